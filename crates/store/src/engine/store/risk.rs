//! Risk rules.

use super::SqlStore;
use crate::model::*;
use crate::ops;
use pocket_core::Error;

impl SqlStore {
    /// Adds an operator risk rule (`400 rule_invalid` unless `when` compiles to a
    /// boolean); it applies to every later creation and confirm, on every node.
    pub async fn add_rule(
        &self,
        name: String,
        when: String,
        action: pocket_core::risk::Action,
        idem: Option<Idem>,
    ) -> Result<Written<crate::model::RiskRule>, Error> {
        self.write_idem(idem, move |c, now| {
            ops::risk::add(c, now, &name, &when, action)
        })
        .await
    }

    /// The rules, in the order they are evaluated.
    pub async fn rules(&self) -> Result<Vec<crate::model::RiskRule>, Error> {
        self.read(ops::risk::list).await
    }

    pub async fn remove_rule(&self, id: String) -> Result<(), Error> {
        self.writer.run(move |c, _| ops::risk::remove(c, &id)).await
    }
}
