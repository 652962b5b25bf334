//! Azure built-in role definitions, from the table wiform shares with the sandbox (which
//! enforces their permissions for callers).

pub use wiform_builtin_roles::*;
