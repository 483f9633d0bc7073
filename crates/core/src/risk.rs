//! Risk rules and limits: the amount-based rule, made dynamic.
//!
//! An operator writes rules as CEL expressions (the Common Expression Language, through
//! the `cel` crate) over what is known of a payment when it is created and again when it
//! is confirmed:
//!
//! - `payment`: `amount` (minor units), `currency`, `merchant`, `tier`;
//! - `customer`: `age_days`, `payments_last_hour`, `spent_today` (in the payment's
//!   currency's minor units, UTC day);
//! - `device`: `registered` (the customer has an active device key).
//!
//! A rule that matches either blocks the payment or raises the proof it needs above its
//! tier's; [`decide`] takes the first block, else the strongest raise. A per-customer
//! daily limit per currency ([`check_daily_limit`]) caps what one wallet spends in a UTC
//! day. Pure: the store reads the figures inside the committing transaction and applies
//! what this decides there, so a rule cannot be dodged by racing.

use crate::error::{Error, ErrorKind};
use crate::policy::Authentication;
use cel::common::types::{CelBool, CelInt, CelString};
use cel::common::value::CowVal;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// Most rules at once: every payment evaluates all of them.
pub const MAX_RULES: usize = 100;
/// Longest expression, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 2_000;
/// Longest all expressions together, in characters: every payment evaluates every
/// rule, so the rules' total size is their cost (the review measured 100 rules of
/// 2,000 characters halving throughput, 666 → 301 payments/s).
pub const MAX_TOTAL_EXPRESSION_CHARS: usize = 20_000;
/// Longest rule name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// A UTC day, the period of `spent_today` and the daily limits.
pub const MS_PER_DAY: i64 = 86_400_000;
/// The bucket of `payments_last_hour`.
pub const MS_PER_MINUTE: i64 = 60_000;

/// CEL's standard functions without its macros (`all`, `exists`, `map`, `filter`,
/// `has`): the facts are scalars, and a comprehension could make one rule run for
/// hours inside the writer. Built once (building it is most of the cost of a fresh
/// `cel::Context`).
static STDLIB: std::sync::LazyLock<Arc<cel::Env>> =
    std::sync::LazyLock::new(|| Arc::new(cel::Env::default().with_stdlib()));

/// The names a rule may read.
pub const FACTS: [&str; 8] = [
    "payment.amount",
    "payment.currency",
    "payment.merchant",
    "payment.tier",
    "customer.age_days",
    "customer.payments_last_hour",
    "customer.spent_today",
    "device.registered",
];

/// The operators and functions a rule may call (CEL's names for operators).
const CALLS: [&str; 26] = [
    "_?_:_",
    "_&&_",
    "_||_",
    "!_",
    "_-_",
    "_+_",
    "_*_",
    "_/_",
    "_%_",
    "_==_",
    "_!=_",
    "_>=_",
    "_<=_",
    "_>_",
    "_<_",
    "-_",
    "@in",
    "@not_strictly_false",
    "size",
    "int",
    "string",
    "contains",
    "startsWith",
    "endsWith",
    "min",
    "max",
];

fn unknown_name(name: &str) -> String {
    format!(
        "'{name}' is not something a rule can read; use one of: {}",
        FACTS.join(", ")
    )
}

/// Every name the expression reads is one of [`FACTS`] and every call one of
/// [`CALLS`]: checked over the whole tree, so a misspelt field on a branch a sample
/// evaluation would not take is refused too.
fn check_names(e: &cel::IdedExpr) -> Result<(), String> {
    use cel::common::ast::{EntryExpr, Expr};
    match &e.expr {
        Expr::Literal(_) => Ok(()),
        Expr::Ident(name) => Err(unknown_name(name)),
        Expr::Select(select) => match &select.operand.expr {
            Expr::Ident(root) if !select.test => {
                let name = format!("{root}.{}", select.field);
                if FACTS.contains(&name.as_str()) {
                    Ok(())
                } else {
                    Err(unknown_name(&name))
                }
            }
            _ => Err("only the listed fields can be selected".to_string()),
        },
        Expr::Call(call) => {
            if !CALLS.contains(&call.func_name.as_str()) {
                return Err(format!(
                    "'{}' is not a function rules may use",
                    call.func_name
                ));
            }
            if let Some(target) = &call.target {
                check_names(target)?;
            }
            call.args.iter().try_for_each(check_names)
        }
        Expr::List(list) => list.elements.iter().try_for_each(check_names),
        Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(e) => check_names(&e.key).and_then(|()| check_names(&e.value)),
            EntryExpr::StructField(_) => Err("struct literals are not allowed".to_string()),
        }),
        Expr::Comprehension(_) => {
            Err("macros (all, exists, map, filter) are not allowed".to_string())
        }
        Expr::Struct(_) | Expr::Unspecified => Err("this expression is not allowed".to_string()),
    }
}

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refuse the payment: `402 payment_blocked`.
    Block,
    /// The wallet's PIN at least.
    RequirePin,
    /// The PIN and a device-key signature.
    RequirePinAndDevice,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::RequirePin => "require_pin",
            Action::RequirePinAndDevice => "require_pin_and_device",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "block" => Some(Action::Block),
            "require_pin" => Some(Action::RequirePin),
            "require_pin_and_device" => Some(Action::RequirePinAndDevice),
            _ => None,
        }
    }
}

/// What a customer has done lately, as the rules see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CustomerFacts {
    pub age_days: i64,
    pub payments_last_hour: i64,
    pub spent_today: i64,
    pub device_registered: bool,
}

/// Everything one evaluation sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts<'a> {
    pub amount: i64,
    pub currency: &'a str,
    pub merchant: &'a str,
    pub tier: &'a str,
    pub customer: CustomerFacts,
}

/// The rules see the facts as qualified names (`payment.amount`), resolved on access:
/// nothing is built or copied per evaluation (CEL looks a dotted name up whole first).
impl cel::context::VariableResolver for Facts<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let c = &self.customer;
        Some(match variable {
            "payment.amount" => CowVal::owned(CelInt::from(self.amount)),
            "payment.currency" => CowVal::owned(CelString::from(self.currency)),
            "payment.merchant" => CowVal::owned(CelString::from(self.merchant)),
            "payment.tier" => CowVal::owned(CelString::from(self.tier)),
            "customer.age_days" => CowVal::owned(CelInt::from(c.age_days)),
            "customer.payments_last_hour" => CowVal::owned(CelInt::from(c.payments_last_hour)),
            "customer.spent_today" => CowVal::owned(CelInt::from(c.spent_today)),
            "device.registered" => CowVal::owned(CelBool::from(c.device_registered)),
            _ => return None,
        })
    }
}

impl Facts<'_> {
    /// The variables the rules see, for all the rules of one decision.
    fn context(&self) -> cel::Context<'_, '_> {
        let mut ctx = cel::Context::with_env(STDLIB.clone());
        ctx.set_variable_resolver(self);
        ctx
    }
}

/// A rule, compiled.
#[derive(Clone)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub action: Action,
    /// Whether it reads `customer` or `device` (else the payment alone decides it).
    pub reads_customer: bool,
    program: Arc<cel::Program>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Rule({}, {}, {})",
            self.id,
            self.name,
            self.action.as_str()
        )
    }
}

fn rule_invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidRequest, "rule_invalid", message).with_param("when")
}

/// A parser's complaint as a sentence and the place it points at: its line and column
/// in the message, and as `position` (1-based, in characters of `when`).
fn parse_error(when: &str, errors: &cel::ParseErrors) -> Error {
    let Some(first) = errors.errors.first() else {
        return rule_invalid("`when` does not parse.");
    };
    let (line, column) = (first.pos.0.max(1) as usize, first.pos.1.max(1) as usize);
    // The parser counts lines and columns from 1; lines before it end in a newline.
    let before: usize = when
        .split('\n')
        .take(line - 1)
        .map(|l| l.chars().count() + 1)
        .sum();
    let what = first.msg.trim_start_matches("Syntax error: ");
    let what = what.split(" expecting ").next().unwrap_or(what);
    let at = if line > 1 {
        format!("line {line}, column {column}")
    } else {
        format!("column {column}")
    };
    let position = u16::try_from(before + column).unwrap_or(u16::MAX);
    rule_invalid(format!("`when` does not parse at {at}: {what}.")).with_position(position)
}

impl Rule {
    /// Compiles `when`; `400 rule_invalid` (with the parser's message) unless it parses
    /// and gives a boolean for a typical payment (so a misspelt field is caught now,
    /// not at the first payment).
    pub fn compile(id: &str, name: &str, when: &str, action: Action) -> Result<Rule, Error> {
        if when.trim().is_empty() || when.chars().count() > MAX_EXPRESSION_CHARS {
            return Err(rule_invalid(format!(
                "`when` must be 1 to {MAX_EXPRESSION_CHARS} characters."
            )));
        }
        if when
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(rule_invalid("`when` may not contain control characters."));
        }
        let program = STDLIB.compile(when).map_err(|e| parse_error(when, &e))?;
        check_names(program.expression())
            .map_err(|e| rule_invalid(format!("`when` cannot be used: {e}")))?;
        let refs = program.references();
        let reads_customer = refs.has_variable("customer") || refs.has_variable("device");
        let rule = Rule {
            id: id.to_string(),
            name: name.to_string(),
            action,
            reads_customer,
            program: Arc::new(program),
        };
        for facts in boundary_facts() {
            if let Err(e) = rule.matches(&facts) {
                let c = &facts.customer;
                return Err(rule_invalid(format!(
                    "`when` cannot be evaluated for every payment: it fails for an amount of {} \
                     with customer.age_days {}, customer.payments_last_hour {}, \
                     customer.spent_today {} and device.registered {}: {e}",
                    facts.amount,
                    c.age_days,
                    c.payments_last_hour,
                    c.spent_today,
                    c.device_registered
                )));
            }
        }
        Ok(rule)
    }

    /// Does the rule match? An expression that does not give a boolean is an error.
    pub fn matches(&self, facts: &Facts<'_>) -> Result<bool, String> {
        self.matches_in(&facts.context())
    }

    fn matches_in(&self, ctx: &cel::Context<'_, '_>) -> Result<bool, String> {
        match self.program.execute(ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("it gives {other:?}, not a boolean")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Payments at the edges of what the facts can be: a rule must give a boolean for
/// each, or it is refused when it is made — an error at payment time counts as a match
/// (fail closed), so a rule that overflows for a customer who has spent anything
/// (`customer.spent_today * 9223372036854775807 > 0`) or divides by a new customer's
/// age would block them all.
fn boundary_facts() -> Vec<Facts<'static>> {
    use crate::money::MAX_AMOUNT_MINOR;
    let customer = |n: i64, device_registered| CustomerFacts {
        age_days: n.min(100_000),
        payments_last_hour: n.min(1_000_000),
        spent_today: n,
        device_registered,
    };
    let facts = |amount, tier, customer| Facts {
        amount,
        currency: "CNY",
        merchant: "mer_sample",
        tier,
        customer,
    };
    vec![
        facts(100, "small", CustomerFacts::default()),
        facts(1, "small", customer(0, false)),
        facts(1, "small", customer(1, true)),
        facts(MAX_AMOUNT_MINOR, "large", customer(0, false)),
        facts(MAX_AMOUNT_MINOR, "large", customer(MAX_AMOUNT_MINOR, true)),
    ]
}

/// `409 rules_too_large` unless a rule of `new_chars` fits beside rules whose
/// expressions total `total_chars` ([`MAX_TOTAL_EXPRESSION_CHARS`]).
pub fn check_total_size(total_chars: usize, new_chars: usize) -> Result<(), Error> {
    if total_chars.saturating_add(new_chars) > MAX_TOTAL_EXPRESSION_CHARS {
        return Err(Error::conflict(
            "rules_too_large",
            format!(
                "The rules' expressions may total at most {MAX_TOTAL_EXPRESSION_CHARS} characters (every payment evaluates them all); these would total {}.",
                total_chars.saturating_add(new_chars)
            ),
        ));
    }
    Ok(())
}

/// What the rules decided for one payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing matched: the tier's policy stands.
    Allow,
    /// The proof is raised to `authentication` by the rule named `rule`.
    Raise {
        authentication: Authentication,
        rule: String,
    },
    /// The rule named `rule` blocks it.
    Block { rule: String },
}

/// The rules' verdict on a payment whose tier asks for `tier_proof`: the first rule
/// (in order) that blocks, else the strongest raise above `tier_proof`, else allow. A
/// rule that cannot be evaluated for these facts counts as matching (fail closed: a
/// broken block rule blocks rather than lets through).
pub fn decide<'r>(
    rules: impl IntoIterator<Item = &'r Rule>,
    facts: &Facts<'_>,
    tier_proof: Authentication,
) -> Verdict {
    let mut rules = rules.into_iter().peekable();
    if rules.peek().is_none() {
        return Verdict::Allow;
    }
    let ctx = facts.context();
    let mut raised: Option<(Authentication, &str)> = None;
    for rule in rules {
        if !rule.matches_in(&ctx).unwrap_or(true) {
            continue;
        }
        let wants = match rule.action {
            Action::Block => {
                return Verdict::Block {
                    rule: rule.name.clone(),
                };
            }
            Action::RequirePin => Authentication::Pin,
            Action::RequirePinAndDevice => Authentication::PinAndDevice,
        };
        let above = raised.map_or(tier_proof, |(a, _)| a);
        if wants.strength() > above.strength() {
            raised = Some((wants, &rule.name));
        }
    }
    match raised {
        None => Verdict::Allow,
        Some((authentication, rule)) => Verdict::Raise {
            authentication,
            rule: rule.to_string(),
        },
    }
}

pub fn payment_blocked(rule: &str) -> Error {
    Error::new(
        ErrorKind::Payment,
        "payment_blocked",
        format!("This payment is blocked by the risk rule '{rule}'."),
    )
}

/// The UTC day of `now_ms` (the period of `spent_today` and of the daily limits).
pub fn day_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(MS_PER_DAY)
}

/// The minute of `now_ms`: `payments_last_hour` sums this minute's bucket and the 60
/// before it (whole minutes, so it covers 60 to 61 minutes: never fewer than an hour).
pub fn minute_of(now_ms: i64) -> i64 {
    now_ms.div_euclid(MS_PER_MINUTE)
}

/// May a customer who spent `spent_today` spend `amount` more under `limit`?
/// `402 limit_exceeded` when not.
pub fn check_daily_limit(limit: Option<i64>, spent_today: i64, amount: i64) -> Result<(), Error> {
    let Some(limit) = limit else { return Ok(()) };
    match spent_today.checked_add(amount) {
        Some(total) if total <= limit => Ok(()),
        _ => Err(Error::new(
            ErrorKind::Payment,
            "limit_exceeded",
            "This payment would take the wallet over its daily spending limit.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn facts(amount: i64, customer: CustomerFacts) -> Facts<'static> {
        Facts {
            amount,
            currency: "CNY",
            merchant: "mer_1",
            tier: "small",
            customer,
        }
    }

    fn rule(name: &str, when: &str, action: Action) -> Rule {
        Rule::compile("rule_1", name, when, action).unwrap()
    }

    #[test]
    fn invalid_expressions_are_refused_with_the_parsers_message() {
        for bad in [
            "payment.amount >",
            "",
            "payment.amout > 1",
            "payment.amount + 1",
            "nope == 1",
            // A misspelt field on a branch a sample payment would not take.
            "payment.currency == 'CNY' || payment.amout > 5",
            // Macros could run for hours: refused.
            "[1, 2, 3].all(x, x > 0)",
            "[[0, 0], [0, 0]].exists(l, l.all(a, true))",
            "has(payment.amount)",
            "payment.amount.x > 1",
            "payment > 1",
            "nosuch(payment.amount)",
            "payment.currency == 'a\u{0}b'",
        ] {
            let e = Rule::compile("r", "n", bad, Action::Block).unwrap_err();
            assert_eq!(e.code, "rule_invalid", "{bad}");
            assert_eq!(e.param.as_deref(), Some("when"));
        }
        let e = Rule::compile("r", "n", "payment.amount > ", Action::Block).unwrap_err();
        assert!(e.message.contains("parse"), "{}", e.message);
    }

    #[test]
    fn a_rule_that_errors_for_some_payment_is_refused_when_made() {
        // The review's rule: accepted, then it blocked everyone who had spent anything
        // (an overflow counts as a match).
        for bad in [
            "customer.spent_today * 9223372036854775807 * 9223372036854775807 > 0",
            "payment.amount * 10000 > 5",
            "payment.amount / customer.age_days > 5",
            "customer.spent_today + 9223372036854775000 > 0",
            "100 % customer.payments_last_hour == 0",
        ] {
            let e = Rule::compile("r", "n", bad, Action::Block).unwrap_err();
            assert!(e.message.contains("every payment"), "{bad}: {}", e.message);
        }
        // Guarded forms of the same are fine.
        for good in [
            "customer.age_days > 0 && payment.amount / customer.age_days > 5",
            "customer.spent_today > 100000",
            "payment.amount > 500000 && !device.registered",
        ] {
            assert!(
                Rule::compile("r", "n", good, Action::Block).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn the_rules_total_size_is_capped() {
        assert!(check_total_size(MAX_TOTAL_EXPRESSION_CHARS - 10, 10).is_ok());
        let e = check_total_size(MAX_TOTAL_EXPRESSION_CHARS - 10, 11).unwrap_err();
        assert_eq!((e.code, e.http_status()), ("rules_too_large", 409));
    }

    #[test]
    fn the_first_block_wins_else_the_strongest_raise() {
        let young = CustomerFacts {
            age_days: 1,
            ..Default::default()
        };
        let rules = vec![
            rule("big", "payment.amount > 50000", Action::RequirePin),
            rule(
                "new wallet",
                "customer.age_days < 7",
                Action::RequirePinAndDevice,
            ),
            rule("no jpy", "payment.currency == 'JPY'", Action::Block),
        ];
        assert_eq!(
            decide(
                &rules,
                &facts(
                    100,
                    CustomerFacts {
                        age_days: 30,
                        ..young
                    }
                ),
                Authentication::None
            ),
            Verdict::Allow
        );
        assert_eq!(
            decide(&rules, &facts(60_000, young), Authentication::None),
            Verdict::Raise {
                authentication: Authentication::PinAndDevice,
                rule: "new wallet".into()
            }
        );
        // A raise to what the tier already asks is no raise.
        assert_eq!(
            decide(&rules[..1], &facts(60_000, young), Authentication::Pin),
            Verdict::Allow
        );
        let jpy = Facts {
            currency: "JPY",
            ..facts(100, young)
        };
        assert_eq!(
            decide(&rules, &jpy, Authentication::None),
            Verdict::Block {
                rule: "no jpy".into()
            }
        );
    }

    #[test]
    fn a_rule_knows_whether_it_reads_the_customer() {
        assert!(!rule("a", "payment.amount > 1", Action::Block).reads_customer);
        assert!(rule("b", "customer.age_days > 1", Action::Block).reads_customer);
        assert!(
            rule(
                "c",
                "payment.amount > 1 && device.registered",
                Action::Block
            )
            .reads_customer
        );
    }

    #[test]
    fn velocity_and_device_facts_are_visible() {
        let r = rule(
            "burst",
            "customer.payments_last_hour >= 10 && customer.spent_today + payment.amount > 100000 && !device.registered",
            Action::Block,
        );
        let busy = CustomerFacts {
            age_days: 100,
            payments_last_hour: 10,
            spent_today: 99_000,
            device_registered: false,
        };
        assert!(r.matches(&facts(2_000, busy)).unwrap());
        assert!(!r.matches(&facts(1_000, busy)).unwrap());
        assert!(
            !r.matches(&facts(
                2_000,
                CustomerFacts {
                    device_registered: true,
                    ..busy
                }
            ))
            .unwrap()
        );
    }

    #[test]
    fn a_rule_that_fails_at_run_time_applies() {
        let r = rule(
            "odd",
            "payment.amount / (customer.age_days - 3) > 0",
            Action::Block,
        );
        let at_three = CustomerFacts {
            age_days: 3,
            ..Default::default()
        };
        assert!(r.matches(&facts(100, at_three)).is_err());
        assert_eq!(
            decide(&[r], &facts(100, at_three), Authentication::None),
            Verdict::Block { rule: "odd".into() }
        );
    }

    proptest! {
        /// A daily limit is never passed, whatever was spent and asked.
        #[test]
        fn daily_limit_holds(limit in 0i64..1_000_000_000_000, spent in 0i64..1_000_000_000_000, amount in 1i64..1_000_000_000_000) {
            match check_daily_limit(Some(limit), spent, amount) {
                Ok(()) => prop_assert!(spent + amount <= limit),
                Err(e) => { prop_assert!(spent + amount > limit); prop_assert_eq!(e.code, "limit_exceeded"); }
            }
        }

        /// A raise never lowers the tier's proof, and a block rule that matches always blocks.
        #[test]
        fn rules_only_ever_tighten(amount in 1i64..1_000_000, threshold in 1i64..1_000_000) {
            let rules = vec![rule("t", &format!("payment.amount > {threshold}"), Action::RequirePin)];
            match decide(&rules, &facts(amount, CustomerFacts::default()), Authentication::PinAndDevice) {
                Verdict::Allow => {}
                other => prop_assert!(false, "{:?}", other),
            }
            let v = decide(&rules, &facts(amount, CustomerFacts::default()), Authentication::None);
            prop_assert_eq!(v != Verdict::Allow, amount > threshold);
        }
    }

    #[test]
    fn a_parse_error_is_a_sentence_that_points_at_its_place() {
        let err = |when: &str| Rule::compile("r", "r", when, Action::Block).unwrap_err();
        let e = err("payment.amount > 5 &&& true");
        assert_eq!(e.code, "rule_invalid");
        assert_eq!(e.position, Some(22), "the third '&'");
        assert!(e.message.contains("column 22"), "{}", e.message);
        assert!(
            !e.message.contains("ERROR: <input>") && !e.message.contains('^'),
            "{}",
            e.message
        );
        let e = err("payment.amount >");
        assert_eq!(e.position, Some(17), "just past the end");
        assert!(!e.message.contains("expecting"), "{}", e.message);
        let e = err("payment.amount > 5 &&\n  customer.age_days >");
        assert!(e.message.contains("line 2"), "{}", e.message);
        assert_eq!(e.position, Some(22 + 22), "just past the end of line 2");
        let e = err("payment.amount > 'x'");
        assert!(!e.message.contains("CustomerFacts"), "{}", e.message);
        assert_eq!(e.position, None);
    }
}
