//! [`Secret`]: a string that must not show up in logs, `Debug` output or error messages (client
//! secrets, passwords, signing secrets, refresh tokens held in memory).

use std::fmt;
use std::sync::Arc;

/// A secret string. `Debug` and `Display` print `***`; [`expose`](Self::expose) reads it.
/// Deserialises from a plain string, so configuration files need no special syntax; it has no
/// `Serialize`, so it cannot be written back out by accident. Cloning is a reference-count
/// increment.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Secret(value.into())
    }

    /// The secret itself. Call it where the value is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SecretVisitor)
    }
}

/// Reads a secret as text. YAML and the environment overlay turn `password: 123456` into a
/// number: it is taken as the text it was written as, because serde's type error would quote
/// the value, and that error is printed.
struct SecretVisitor;

impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret (text)")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::from(v))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret::from(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
        Ok(Secret::new(v.to_string()))
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
        Ok(Secret::new(v.to_string()))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Secret, E> {
        Ok(Secret::new(v.to_string()))
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Secret, E> {
        Ok(Secret::new(v.to_string()))
    }
}

#[cfg(feature = "sidecar")]
impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert!(!format!("{:?}", Some(s)).contains("hunter2"));
    }

    #[test]
    fn numbers_are_read_as_text_and_never_echoed() {
        let s: Secret = serde_json::from_str("123456").unwrap();
        assert_eq!(s.expose(), "123456");
        let s: Secret = serde_json::from_str("true").unwrap();
        assert_eq!(s.expose(), "true");
        let e = serde_json::from_str::<Secret>("[98765]").unwrap_err();
        assert!(!e.to_string().contains("98765"), "{e}");
    }
}
