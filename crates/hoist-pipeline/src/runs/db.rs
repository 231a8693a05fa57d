//! The run history's two databases behind one small interface: SQLite (the
//! default, a file under hoist's home) and PostgreSQL (given a URL, for servers
//! that share it). Statements are written once, with `?N` parameters (rewritten to
//! `$N` for PostgreSQL) in the SQL both accept; only the schema steps and the
//! queue's claim differ, and say so where they are.
//!
//! Hand-written over `rusqlite` and `postgres` rather than an ORM: a dozen
//! statements, all synchronous like the engine, and no async runtime to carry.

use std::fmt;

use rusqlite::OptionalExtension;

/// A database error.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
    /// A column held what this code does not read.
    #[error("column {0}: unexpected value")]
    Type(usize),
}

/// A parameter or a column value. Nulls carry a type: PostgreSQL checks each
/// parameter's type against where it is used.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A text.
    Text(String),
    /// A boolean (an integer 0/1 in SQLite).
    Bool(bool),
    /// An integer's null.
    NullInt,
    /// A text's null.
    NullText,
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}

impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Value {
        v.map_or(Value::NullText, Value::from)
    }
}

impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Value {
        v.as_deref().into()
    }
}

impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Value {
        v.map_or(Value::NullInt, Value::Int)
    }
}

/// The parameters of a statement: `params![a, b]`.
macro_rules! params {
    () => { &[] as &[$crate::runs::db::Value] };
    ($($v:expr),+ $(,)?) => { &[$($crate::runs::db::Value::from($v)),+][..] };
}
pub(crate) use params;

/// A result row.
#[derive(Debug)]
pub struct Row(Vec<Value>);

impl Row {
    /// Column `i` as an integer (SQLite and PostgreSQL booleans too).
    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        self.opt_int(i)?.ok_or(DbError::Type(i))
    }

    /// Column `i` as an integer or null.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.0.get(i) {
            Some(Value::Int(v)) => Ok(Some(*v)),
            Some(Value::Bool(b)) => Ok(Some(i64::from(*b))),
            Some(Value::NullInt | Value::NullText) => Ok(None),
            _ => Err(DbError::Type(i)),
        }
    }

    /// Column `i` as a boolean (an integer other than 0 is true).
    pub fn bool(&self, i: usize) -> Result<bool, DbError> {
        Ok(self.int(i)? != 0)
    }

    /// Column `i` as a text.
    pub fn text(&self, i: usize) -> Result<String, DbError> {
        self.opt_text(i)?.ok_or(DbError::Type(i))
    }

    /// Column `i` as a text or null.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.0.get(i) {
            Some(Value::Text(v)) => Ok(Some(v.clone())),
            Some(Value::NullInt | Value::NullText) => Ok(None),
            _ => Err(DbError::Type(i)),
        }
    }
}

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A connection.
pub enum Conn {
    /// SQLite.
    Sqlite(rusqlite::Connection),
    /// PostgreSQL.
    Postgres(Box<postgres::Client>),
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Conn({:?})", self.dialect())
    }
}

/// A transaction; dropped without [`Tx::commit`], it rolls back.
pub enum Tx<'c> {
    /// SQLite.
    Sqlite(rusqlite::Transaction<'c>),
    /// PostgreSQL.
    Postgres(postgres::Transaction<'c>),
}

/// `?N` to `$N`, outside quotes.
fn dollar(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

fn pg_params(params: &[Value]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|v| -> Box<dyn postgres::types::ToSql + Sync> {
            match v {
                Value::Int(i) => Box::new(*i),
                Value::Text(t) => Box::new(t.clone()),
                Value::Bool(b) => Box::new(*b),
                Value::NullInt => Box::new(None::<i64>),
                Value::NullText => Box::new(None::<String>),
            }
        })
        .collect()
}

fn sqlite_params(params: &[Value]) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value as V;
    params
        .iter()
        .map(|v| match v {
            Value::Int(i) => V::Integer(*i),
            Value::Text(t) => V::Text(t.clone()),
            Value::Bool(b) => V::Integer(i64::from(*b)),
            Value::NullInt | Value::NullText => V::Null,
        })
        .collect()
}

fn pg_row(row: &postgres::Row) -> Result<Row, DbError> {
    use postgres::types::Type;
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let t = col.type_();
        let v = if *t == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?
                .map_or(Value::NullInt, Value::Int)
        } else if *t == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map_or(Value::NullInt, |v| Value::Int(v.into()))
        } else if *t == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?
                .map_or(Value::NullInt, Value::Bool)
        } else if *t == Type::TEXT || *t == Type::VARCHAR {
            row.try_get::<_, Option<String>>(i)?
                .map_or(Value::NullText, Value::Text)
        } else {
            return Err(DbError::Type(i));
        };
        out.push(v);
    }
    Ok(Row(out))
}

fn sqlite_row(row: &rusqlite::Row<'_>, n: usize) -> rusqlite::Result<Row> {
    use rusqlite::types::ValueRef;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(match row.get_ref(i)? {
            ValueRef::Null => Value::NullInt,
            ValueRef::Integer(v) => Value::Int(v),
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Real(_) | ValueRef::Blob(_) => {
                return Err(rusqlite::Error::InvalidColumnType(
                    i,
                    String::new(),
                    rusqlite::types::Type::Blob,
                ))
            }
        });
    }
    Ok(Row(out))
}

impl Conn {
    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Begins a transaction. In SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so that a read-then-write in it cannot lose to another process.
    pub fn tx(&mut self) -> Result<Tx<'_>, DbError> {
        Ok(match self {
            Conn::Sqlite(c) => {
                Tx::Sqlite(c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
            }
            Conn::Postgres(c) => Tx::Postgres(c.transaction()?),
        })
    }
}

impl Tx<'_> {
    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        match self {
            Tx::Sqlite(_) => Dialect::Sqlite,
            Tx::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; returns the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        Ok(match self {
            Tx::Sqlite(t) => {
                t.execute(sql, rusqlite::params_from_iter(sqlite_params(params)))? as u64
            }
            Tx::Postgres(t) => {
                let boxed = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                t.execute(dollar(sql).as_str(), &refs)?
            }
        })
    }

    /// Runs statements with no parameters (a schema step).
    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(t) => t.execute_batch(sql)?,
            Tx::Postgres(t) => t.batch_execute(sql)?,
        }
        Ok(())
    }

    /// The rows of a query.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        match self {
            Tx::Sqlite(t) => {
                let mut stmt = t.prepare(sql)?;
                let n = stmt.column_count();
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(sqlite_params(params)), |r| {
                        sqlite_row(r, n)
                    })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            }
            Tx::Postgres(t) => {
                let boxed = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                t.query(dollar(sql).as_str(), &refs)?
                    .iter()
                    .map(pg_row)
                    .collect()
            }
        }
    }

    /// The first row of a query, if any.
    pub fn row(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        if let Tx::Sqlite(t) = self {
            let mut stmt = t.prepare(sql)?;
            let n = stmt.column_count();
            return Ok(stmt
                .query_row(rusqlite::params_from_iter(sqlite_params(params)), |r| {
                    sqlite_row(r, n)
                })
                .optional()?);
        }
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Commits.
    pub fn commit(self) -> Result<(), DbError> {
        match self {
            Tx::Sqlite(t) => t.commit()?,
            Tx::Postgres(t) => t.commit()?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_dollars_outside_quotes_only() {
        assert_eq!(
            dollar("SELECT ?1, '?' FROM t WHERE a = ?2 AND b = 'it''s ?3'"),
            "SELECT $1, '?' FROM t WHERE a = $2 AND b = 'it''s ?3'"
        );
    }
}
