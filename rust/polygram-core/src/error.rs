//! The one error type of the core. Rust never panics on user data: every
//! check that depends on an input returns one of these.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// An argument is out of its domain: `field` names it, `message` says
    /// what was given and what is allowed.
    Invalid { field: String, message: String },
    /// The work would need more memory than the budget allows (or than an
    /// address space holds): refused before anything is allocated.
    TooLarge { field: String, message: String },
    /// The caller asked to stop (Ctrl-C).
    Interrupted,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn too_large(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::TooLarge {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid { field, message } | Error::TooLarge { field, message } => {
                write!(f, "{field}: {message}")
            }
            Error::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for Error {}
