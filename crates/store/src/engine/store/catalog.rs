//! The merchant's products.

use super::SqlStore;
use crate::ProductPatch;
use crate::model::*;
use crate::ops;
use pocket_core::Error;
use pocket_core::pricing::Product;

impl SqlStore {
    pub async fn create_product(
        &self,
        merchant_id: String,
        product: Product,
        idem: Option<Idem>,
    ) -> Result<Written<Product>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::catalog::create(c, now, &merchant_id, &product)
        })
        .await
    }

    pub async fn update_product(
        &self,
        merchant_id: String,
        sku: String,
        patch: ProductPatch,
        idem: Option<Idem>,
    ) -> Result<Written<Product>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::catalog::update(c, now, &merchant_id, &sku, &patch)
        })
        .await
    }

    pub async fn list_products(
        &self,
        merchant_id: String,
        page: PageRequest,
    ) -> Result<Page<Product>, Error> {
        self.read(move |c| ops::catalog::list(c, &merchant_id, &page))
            .await
    }
}
