//! The parsed form of an expression, shared by both dialects.

use serde_json::Value;

/// Which subset of FHIRPath an expression was written in; it also decides how a collection
/// reads as a boolean (see [`Dialect::Patch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// Search-parameter and compartment expressions: everything this engine evaluates. A leading
    /// capitalised name is the focus when it names its resource type (or `Resource`,
    /// `DomainResource`), otherwise a child; a collection of several items reads as true.
    Search,
    /// FHIRPath Patch paths: navigation, `[n]`, `where()`, `first()` and `last()`, with criteria
    /// that compare with `=`/`!=` and join with `and`/`or`. A leading capitalised name must be
    /// the resource's type, and criteria giving several items are an error, since a patch must
    /// not guess which element it changes.
    Patch,
}

/// A parsed expression and the dialect whose rules evaluate it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expression {
    /// The dialect it was parsed in.
    pub dialect: Dialect,
    /// The expression itself.
    pub expr: Expr,
}

impl Expression {
    /// For a path ending in `.name`: the path to the element that holds `name`, and the name.
    /// Insert and move address a list through its holder, so an empty or absent list can be
    /// addressed too.
    pub(crate) fn split_last_member(&self) -> Option<(Expression, &str)> {
        let Expr::Path(path) = &self.expr else {
            return None;
        };
        let (Step::Member(name), rest) = path.steps.split_last()? else {
            return None;
        };
        let holder = Expression {
            dialect: self.dialect,
            expr: Expr::Path(Path {
                head: path.head.clone(),
                steps: rest.to_vec(),
            }),
        };
        Some((holder, name))
    }
}

/// An expression node. Chains of one operator are kept flat, so a long chain costs no recursion.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// A string, number or boolean literal.
    Literal(Value),
    /// A start and the navigation and function steps taken from it.
    Path(Path),
    /// `a | b | ...`: the items of all operands, without repeats.
    Union(Vec<Expr>),
    /// All operands true.
    And(Vec<Expr>),
    /// Any operand true.
    Or(Vec<Expr>),
    /// An odd number of operands true.
    Xor(Vec<Expr>),
    /// `left = right`, or `left != right` when `negated`.
    Compare {
        left: Box<Expr>,
        right: Box<Expr>,
        negated: bool,
    },
}

/// A navigation path: where it starts and the steps taken from there.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    /// Where the path starts.
    pub head: Head,
    /// Steps applied in order to the starting collection.
    pub steps: Vec<Step>,
}

/// The start of a path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Head {
    /// The input collection: `$this`, or nothing before a leading element or function name.
    This,
    /// A leading name in a search expression: the focus itself when it names the focus's
    /// resource type (`Patient`, `Resource`), otherwise its children of that name.
    TypeOrChild(String),
    /// A leading type name in a patch path (`Patient` in `Patient.name`): the resource must be
    /// of that type.
    ResourceType(String),
    /// Any other term (a parenthesised expression or a literal), navigated from.
    Expr(Box<Expr>),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Child elements by name, flattened across repeats.
    Member(String),
    /// `[n]`: the n-th item (0-based) of the collection so far.
    Index(usize),
    /// `where(criteria)`: items for which the criteria are true.
    Where(Box<Expr>),
    /// `exists()`, or `exists(criteria)`: whether any item (meeting the criteria) is there.
    Exists(Option<Box<Expr>>),
    /// `empty()`.
    Empty,
    /// `not()`.
    Not,
    /// `first()`.
    First,
    /// `last()`.
    Last,
    /// `as(T)`, `ofType(T)` or the `as T` operator: the items of type T.
    OfType(String),
    /// `is(T)` or the `is T` operator: whether every item is of type T.
    Is(String),
    /// `resolve()`, which only works out the type a reference points at, so that
    /// `resolve() is Patient` can filter references without a database.
    Resolve,
}
