//! Values crossing into and out of either engine.
//!
//! Parameters become a [`Value`]; columns come back as a [`Cell`]. SQLite has few
//! types; PostgreSQL is strict (a `bigint` parameter needs eight bytes, `SUM(bigint)`
//! is `numeric`). Both conversions live here, once, so the SQL of every operation can
//! be written once for both engines.

use super::{Result, SqlError};
use postgres::types::{IsNull, Type, to_sql_checked};
use std::error::Error as StdError;

/// A parameter.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// What can be a parameter.
pub trait ToSql {
    fn to_value(&self) -> Value<'_>;
}

impl ToSql for i64 {
    fn to_value(&self) -> Value<'_> {
        Value::Int(*self)
    }
}
macro_rules! small_ints {
    ($($t:ty)*) => {$(
        impl ToSql for $t {
            fn to_value(&self) -> Value<'_> {
                Value::Int(i64::from(*self))
            }
        }
        impl FromSql for $t {
            fn from_cell(cell: Cell<'_>) -> Result<$t> {
                let i = i64::from_cell(cell)?;
                <$t>::try_from(i).map_err(|_| mismatch(stringify!($t), Cell::Int(i)))
            }
        }
    )*};
}
small_ints!(u8 u16 u32 i16 i32);
impl ToSql for usize {
    fn to_value(&self) -> Value<'_> {
        // Counts and limits: far below i64::MAX.
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}
impl ToSql for bool {
    fn to_value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}
impl ToSql for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToSql for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}
impl ToSql for [u8] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl ToSql for Vec<u8> {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}
impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}
impl<T: ToSql> ToSql for Option<T> {
    fn to_value(&self) -> Value<'_> {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}
impl ToSql for Value<'_> {
    fn to_value(&self) -> Value<'_> {
        *self
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// Encodes a parameter as the type PostgreSQL inferred for it. Every integer column
/// is `bigint`; an integer bound where PostgreSQL guessed `text` (`LIKE ?`, a bare
/// `?` in a select list) is sent as its decimal digits.
impl postgres::types::ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::NUMERIC => Err(format!(
                    "integer {i} bound to a numeric parameter: cast it to bigint in the SQL"
                )
                .into()),
                _ => i.to_string().as_str().to_sql(&Type::TEXT, out),
            },
            Value::Text(s) => match *ty {
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                Type::INT8 | Type::INT4 | Type::INT2 | Type::BOOL => {
                    Err(format!("text bound to a {ty} parameter").into())
                }
                _ => s.to_sql(&Type::TEXT, out),
            },
            Value::Blob(b) => b.to_sql(&Type::BYTEA, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A column as read.
#[derive(Clone, Copy, Debug)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl<'a> From<rusqlite::types::ValueRef<'a>> for Cell<'a> {
    fn from(v: rusqlite::types::ValueRef<'a>) -> Cell<'a> {
        use rusqlite::types::ValueRef;
        match v {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Int(i),
            ValueRef::Real(f) => Cell::Real(f),
            // SQLite hands back what it was given; Pocket only stores UTF-8 text.
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(Cell::Text)
                .unwrap_or(Cell::Blob(t)),
            ValueRef::Blob(b) => Cell::Blob(b),
        }
    }
}

impl<'a> postgres::types::FromSql<'a> for Cell<'a> {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Cell<'a>, Box<dyn StdError + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => Cell::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Cell::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Cell::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Cell::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Cell::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Cell::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::NUMERIC => Cell::Int(numeric_to_i64(raw)?),
            Type::BYTEA => Cell::Blob(raw),
            _ => Cell::Text(<&str>::from_sql(&Type::TEXT, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Cell<'a>, Box<dyn StdError + Sync + Send>> {
        Ok(Cell::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// An integral `numeric` (what `SUM(bigint)` returns) as an `i64`. The binary form is
/// base-10000 digits: `ndigits, weight, sign, dscale`, then the digits.
fn numeric_to_i64(raw: &[u8]) -> std::result::Result<i64, Box<dyn StdError + Sync + Send>> {
    let word = |i: usize| -> std::result::Result<i16, Box<dyn StdError + Sync + Send>> {
        let b = raw.get(i * 2..i * 2 + 2).ok_or("short numeric")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let (ndigits, weight, sign) = (word(0)?, word(1)?, word(2)? as u16);
    if sign == 0xC000 {
        return Err("NaN numeric".into());
    }
    let mut value: i64 = 0;
    for i in 0..ndigits.max(0) as usize {
        // Digit i stands for 10000^(weight - i); fractional digits must be zero.
        let digit = i64::from(word(4 + i)?);
        let power = i64::from(weight) - i as i64;
        if power < 0 {
            if digit != 0 {
                return Err("fractional numeric".into());
            }
            continue;
        }
        let mut scaled = digit;
        for _ in 0..power {
            scaled = scaled.checked_mul(10_000).ok_or("numeric out of range")?;
        }
        value = value.checked_add(scaled).ok_or("numeric out of range")?;
    }
    Ok(if sign == 0x4000 { -value } else { value })
}

/// What a column can be read as.
pub trait FromSql: Sized {
    fn from_cell(cell: Cell<'_>) -> Result<Self>;
}

fn mismatch(want: &str, got: Cell<'_>) -> SqlError {
    SqlError::Decode(format!("expected {want}, found {got:?}"))
}

impl FromSql for i64 {
    fn from_cell(cell: Cell<'_>) -> Result<i64> {
        match cell {
            Cell::Int(i) => Ok(i),
            other => Err(mismatch("an integer", other)),
        }
    }
}
impl FromSql for usize {
    fn from_cell(cell: Cell<'_>) -> Result<usize> {
        let i = i64::from_cell(cell)?;
        usize::try_from(i).map_err(|_| mismatch("a count", Cell::Int(i)))
    }
}
impl FromSql for bool {
    fn from_cell(cell: Cell<'_>) -> Result<bool> {
        Ok(i64::from_cell(cell)? != 0)
    }
}
impl FromSql for f64 {
    fn from_cell(cell: Cell<'_>) -> Result<f64> {
        match cell {
            Cell::Real(f) => Ok(f),
            Cell::Int(i) => Ok(i as f64),
            other => Err(mismatch("a number", other)),
        }
    }
}
impl FromSql for String {
    fn from_cell(cell: Cell<'_>) -> Result<String> {
        match cell {
            Cell::Text(s) => Ok(s.to_owned()),
            other => Err(mismatch("text", other)),
        }
    }
}
impl FromSql for Vec<u8> {
    fn from_cell(cell: Cell<'_>) -> Result<Vec<u8>> {
        match cell {
            Cell::Blob(b) => Ok(b.to_vec()),
            Cell::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(mismatch("bytes", other)),
        }
    }
}
impl<T: FromSql> FromSql for Option<T> {
    fn from_cell(cell: Cell<'_>) -> Result<Option<T>> {
        match cell {
            Cell::Null => Ok(None),
            other => T::from_cell(other).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::numeric_to_i64;

    fn numeric(weight: i16, sign: u16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [digits.len() as i16, weight, sign as i16, 0] {
            out.extend_from_slice(&w.to_be_bytes());
        }
        for d in digits {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn integral_numerics_decode() {
        assert_eq!(numeric_to_i64(&numeric(0, 0, &[])).unwrap(), 0);
        assert_eq!(numeric_to_i64(&numeric(0, 0, &[1234])).unwrap(), 1234);
        assert_eq!(
            numeric_to_i64(&numeric(1, 0, &[12, 3456])).unwrap(),
            123_456
        );
        assert_eq!(
            numeric_to_i64(&numeric(2, 0x4000, &[1])).unwrap(),
            -100_000_000
        );
        assert_eq!(
            numeric_to_i64(&numeric(4, 0, &[922, 3372, 368, 5477, 5807])).unwrap(),
            i64::MAX
        );
        assert!(numeric_to_i64(&numeric(4, 0, &[922, 3372, 368, 5477, 5808])).is_err());
        assert!(numeric_to_i64(&numeric(-1, 0, &[5000])).is_err());
    }
}
