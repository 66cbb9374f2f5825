//! The one FHIRPath engine. Search-parameter and compartment expressions and FHIRPath Patch
//! paths are parsed by the same parser into the same AST and evaluated by the same evaluator.
//!
//! Each caller accepts its own subset, a [`Dialect`], and anything outside it is refused at parse
//! time: an unsupported search expression is found by the tests rather than silently evaluated
//! to nothing, and an unsupported patch path is refused as malformed. The search dialect is the
//! whole engine: paths (arrays flatten, choice elements such as `value[x]` resolve from
//! `valueQuantity` etc.), `[n]`, `|`, `and`/`or`/`xor`, `=`/`!=`, `is`/`as`, parentheses, string,
//! number and boolean literals, `$this`, and the functions `where`, `exists`, `empty`, `not`,
//! `first`, `last`, `as`, `ofType`, `is` and `resolve` (which only works out the target type of a
//! reference, so `resolve() is Patient` can filter references without a database). The patch
//! dialect is a single path of navigation, `[n]`, `where()`, `first()` and `last()`, whose
//! criteria compare with literals using `=`/`!=` joined with `and`/`or`.
//!
//! Evaluation is generic over the items of a collection. Search evaluates over [`Node`]s: plain
//! JSON navigation with no bookkeeping, since it runs on every write. A patch evaluates with
//! [`select`], over elements typed by the R4 element table that remember their location (keys
//! and indices from the root), so only a patch pays for locations.

mod ast;
mod eval;
mod lex;
mod located;
mod node;
mod parse;
pub(crate) mod typed;

#[cfg(test)]
mod tests;

pub(crate) use ast::{Dialect, Expression};
pub(crate) use eval::reference_type;
pub(crate) use located::{select, Seg, Selected};
pub(crate) use node::{evaluate, Node};
pub(crate) use parse::parse;
