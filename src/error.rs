//! One error convention for every layer: an error says what went wrong (its message) and, when
//! wiform knows, what to do about it (its hint), as two values. Whoever shows the error decides
//! how: the CLI prints `error: {message}` then `  hint: {hint}`, the plan keeps both in a
//! [`PlanError`](crate::engine::plan::PlanError), apply in its outcome. Nobody reads a hint back
//! out of an error's text.

/// An error that explains itself to the person running wiform.
pub trait Explain {
    /// What went wrong, naming the object and what wiform was doing.
    fn message(&self) -> String;

    /// What the user can do about it, when wiform knows.
    fn hint(&self) -> Option<String>;
}
