//! Text out: diagnostics, graphs and plans. Data in, strings out; no IO here.

pub mod diagnostics;
pub mod drift;
pub mod graph;
pub mod plan;
pub mod verify;

/// How to draw: colours or not, and how wide.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    pub width: usize,
}

impl Style {
    pub fn plain() -> Self {
        Style {
            color: false,
            width: 100,
        }
    }
}
