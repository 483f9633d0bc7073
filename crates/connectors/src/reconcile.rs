//! Reconciliation: Pocket's operations with one connector on one day against the
//! connector's statement for that day, matched by operation id. Pure.

use crate::{OpAnswer, OpStatus};
use serde::Serialize;
use std::collections::BTreeMap;

/// One of Pocket's operations as reconciliation sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Line {
    pub operation_id: String,
    pub amount: i64,
    pub currency: String,
    /// `succeeded`, `failed` or `processing` (`pending` at the bank).
    pub status: String,
}

/// Where Pocket's books and the bank's differ on an operation both know.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Mismatch {
    pub operation_id: String,
    pub pocket: Line,
    pub connector: Line,
}

/// An operation for which the bank gave a signed answer Pocket refused (about another
/// operation, another amount, currency or kind, or malformed): never applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RefusedAnswer {
    pub operation_id: String,
    /// What was wrong with the (latest) refused answer.
    pub why: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub connector: String,
    pub date: String,
    /// Operations both sides know with the same amount, currency and final state.
    pub matched: usize,
    pub missing_at_connector: Vec<Line>,
    pub missing_in_pocket: Vec<Line>,
    pub amount_mismatches: Vec<Mismatch>,
    /// Same amount, different outcome (one side succeeded, the other did not).
    pub status_mismatches: Vec<Mismatch>,
    /// Pocket's operations of the day whose bank answered something Pocket refused.
    pub refused_answers: Vec<RefusedAnswer>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.missing_at_connector.is_empty()
            && self.missing_in_pocket.is_empty()
            && self.amount_mismatches.is_empty()
            && self.status_mismatches.is_empty()
            && self.refused_answers.is_empty()
    }

    /// The report as CSV: one line per difference, `kind,operation_id,pocket_amount,
    /// connector_amount,currency,pocket_status,connector_status,why`; every cell quoted
    /// and safe from formula injection (`pocket_core::csv`).
    pub fn csv(&self) -> String {
        use pocket_core::csv::row;
        let mut out = row(&[
            "kind",
            "operation_id",
            "pocket_amount",
            "connector_amount",
            "currency",
            "pocket_status",
            "connector_status",
            "why",
        ]);
        for l in &self.missing_at_connector {
            let amount = l.amount.to_string();
            out += &row(&[
                "missing_at_connector",
                &l.operation_id,
                &amount,
                "",
                &l.currency,
                &l.status,
                "",
                "",
            ]);
        }
        for l in &self.missing_in_pocket {
            let amount = l.amount.to_string();
            out += &row(&[
                "missing_in_pocket",
                &l.operation_id,
                "",
                &amount,
                &l.currency,
                "",
                &l.status,
                "",
            ]);
        }
        for (kind, list) in [
            ("amount_mismatch", &self.amount_mismatches),
            ("status_mismatch", &self.status_mismatches),
        ] {
            for m in list {
                let (ours, theirs) = (m.pocket.amount.to_string(), m.connector.amount.to_string());
                out += &row(&[
                    kind,
                    &m.operation_id,
                    &ours,
                    &theirs,
                    &m.pocket.currency,
                    &m.pocket.status,
                    &m.connector.status,
                    "",
                ]);
            }
        }
        for r in &self.refused_answers {
            out += &row(&[
                "refused_answer",
                &r.operation_id,
                "",
                "",
                "",
                "",
                "",
                &r.why,
            ]);
        }
        out
    }
}

/// The connector's statement line as a [`Line`].
pub fn line_of(s: &OpAnswer) -> Line {
    Line {
        operation_id: s.operation_id.clone(),
        amount: s.amount,
        currency: s.currency.clone(),
        status: match &s.status {
            OpStatus::Pending => "processing".into(),
            OpStatus::Succeeded => "succeeded".into(),
            OpStatus::Failed { .. } => "failed".into(),
        },
    }
}

/// Matches the two sides by operation id; `refused` are Pocket's operations of the day
/// whose bank gave an answer Pocket refused.
pub fn reconcile(
    connector: &str,
    date: &str,
    pocket: Vec<Line>,
    bank: Vec<Line>,
    refused: Vec<RefusedAnswer>,
) -> Report {
    let mut theirs: BTreeMap<String, Line> = bank
        .into_iter()
        .map(|l| (l.operation_id.clone(), l))
        .collect();
    let mut report = Report {
        connector: connector.to_string(),
        date: date.to_string(),
        refused_answers: refused,
        ..Report::default()
    };
    for ours in pocket {
        match theirs.remove(&ours.operation_id) {
            None => report.missing_at_connector.push(ours),
            Some(t) => {
                let id = ours.operation_id.clone();
                if t.amount != ours.amount || t.currency != ours.currency {
                    report.amount_mismatches.push(Mismatch {
                        operation_id: id,
                        pocket: ours,
                        connector: t,
                    });
                } else if (t.status == "succeeded") != (ours.status == "succeeded") {
                    report.status_mismatches.push(Mismatch {
                        operation_id: id,
                        pocket: ours,
                        connector: t,
                    });
                } else {
                    report.matched += 1;
                }
            }
        }
    }
    report.missing_in_pocket = theirs.into_values().collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(id: &str, amount: i64, status: &str) -> Line {
        Line {
            operation_id: id.into(),
            amount,
            currency: "CNY".into(),
            status: status.into(),
        }
    }

    #[test]
    fn every_kind_of_difference_is_named() {
        let pocket = vec![
            l("a", 100, "succeeded"),
            l("b", 200, "succeeded"),
            l("c", 300, "succeeded"),
            l("d", 400, "failed"),
            l("e", 500, "succeeded"),
        ];
        let bank = vec![
            l("a", 100, "succeeded"),
            l("b", 250, "succeeded"),
            l("c", 300, "failed"),
            l("d", 400, "failed"),
            l("z", 9, "succeeded"),
        ];
        let refused = vec![RefusedAnswer {
            operation_id: "a".into(),
            why: "=1+1".into(),
        }];
        let r = reconcile("sandbox", "2026-11-26", pocket, bank, refused);
        assert_eq!(r.matched, 2);
        assert_eq!(r.missing_at_connector, vec![l("e", 500, "succeeded")]);
        assert_eq!(r.missing_in_pocket, vec![l("z", 9, "succeeded")]);
        assert_eq!(r.amount_mismatches.len(), 1);
        assert_eq!(r.status_mismatches.len(), 1);
        assert!(!r.is_clean());
        let csv = r.csv();
        assert_eq!(csv.lines().count(), 6, "{csv}");
        assert!(csv.contains("\"amount_mismatch\",\"b\",\"200\",\"250\",\"CNY\""));
        assert!(csv.contains("\"refused_answer\",\"a\",\"\",\"\",\"\",\"\",\"\",\"'=1+1\""));
        assert!(
            reconcile(
                "s",
                "d",
                vec![l("a", 1, "succeeded")],
                vec![l("a", 1, "succeeded")],
                vec![]
            )
            .is_clean()
        );
    }
}
