//! Parses an expression of either dialect into the shared AST.
//!
//! Grammar, loosest binding first (the search dialect's precedence):
//! `or`/`xor`, `and`, `=`/`!=` (one comparison, not a chain), `|`, `is`/`as`, then a term with
//! its steps (`.name`, `.function(...)`, `[n]`). A patch path is a single path, and its criteria
//! compare terms: no `|`, `xor`, `is` or `as`, and no steps after a parenthesis or literal.

use serde_json::Value;

use super::ast::{Dialect, Expr, Expression, Head, Path, Step};
use super::lex::{lex, Token};

/// Longest expression accepted, far beyond any real patch path or search expression.
pub(super) const MAX_EXPRESSION_LEN: usize = 4096;
/// Deepest nesting of parentheses, function arguments and mixed `or`/`xor` chains accepted,
/// bounding recursion in the parser and in the evaluator (whose recursion follows the AST).
pub(super) const MAX_NESTING: usize = 32;

/// The functions each dialect accepts; anything else is refused at parse time so an unsupported
/// expression is found by the tests (search) or refused as malformed (patch), never silently
/// evaluated to nothing.
const SEARCH_FUNCTIONS: &[&str] = &[
    "where", "exists", "empty", "not", "first", "last", "as", "ofType", "is", "resolve",
];
/// The functions FHIRPath Patch paths need.
const PATCH_FUNCTIONS: &[&str] = &["where", "first", "last"];

/// Parses `text` as an expression of `dialect`.
pub(crate) fn parse(text: &str, dialect: Dialect) -> Result<Expression, String> {
    let noun = noun(dialect);
    if text.len() > MAX_EXPRESSION_LEN {
        return Err(format!(
            "the {noun} is longer than {MAX_EXPRESSION_LEN} characters"
        ));
    }
    let tokens = lex(text, dialect)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
        dialect,
    };
    let expr = match dialect {
        Dialect::Patch => Expr::Path(parser.path(true)?),
        Dialect::Search => parser.expr()?,
    };
    if let Some(extra) = parser.peek() {
        return Err(match dialect {
            Dialect::Patch => format!(
                "unexpected {} after the path (only navigation, [n], where(), first() and last() are supported)",
                extra.describe()
            ),
            Dialect::Search => format!("unexpected {} after the expression", extra.describe()),
        });
    }
    Ok(Expression { dialect, expr })
}

/// What messages call the text: a patch names its locations by paths.
fn noun(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Search => "expression",
        Dialect::Patch => "path",
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    dialect: Dialect,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn peek_at(&self, offset: usize) -> Option<&Token> {
        self.tokens.get(self.pos + offset)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    /// Consumes `token` if it is next.
    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, want: &Token) -> Result<(), String> {
        match self.next() {
            Some(ref t) if t == want => Ok(()),
            Some(t) => Err(format!(
                "expected {} but found {}",
                want.describe(),
                t.describe()
            )),
            None => Err(format!(
                "expected {} but the {} ended",
                want.describe(),
                noun(self.dialect)
            )),
        }
    }

    /// Consumes an unquoted keyword if it is next.
    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(w, false)) if w == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!(
                "the {} nests more than {MAX_NESTING} levels of parentheses, functions or operators",
                noun(self.dialect)
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `and_expr (('or' | 'xor') and_expr)*`, one nesting level (each parenthesis and function
    /// argument is one).
    fn expr(&mut self) -> Result<Expr, String> {
        self.enter()?;
        let mut operands = vec![self.and_expr()?];
        let mut chain: Option<bool> = None;
        loop {
            let xor = if self.keyword("or") {
                false
            } else if self.dialect == Dialect::Search && self.keyword("xor") {
                true
            } else {
                break;
            };
            if let Some(previous) = chain.filter(|&previous| previous != xor) {
                // `a or b xor c` is `(a or b) xor c`: the chain so far becomes one operand, a
                // level deeper. The level is not given back when this one ends, so the bound
                // holds however such chains and parentheses are arranged.
                self.enter()?;
                let so_far = logic(previous, std::mem::take(&mut operands));
                operands.push(so_far);
            }
            chain = Some(xor);
            operands.push(self.and_expr()?);
        }
        self.leave();
        Ok(match chain {
            Some(xor) => logic(xor, operands),
            None => operands.remove(0),
        })
    }

    fn and_expr(&mut self) -> Result<Expr, String> {
        let mut operands = vec![self.comparison()?];
        while self.keyword("and") {
            operands.push(self.comparison()?);
        }
        Ok(if operands.len() == 1 {
            operands.remove(0)
        } else {
            Expr::And(operands)
        })
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.operand()?;
        let negated = match self.peek() {
            Some(Token::Eq) => false,
            Some(Token::NotEq) => true,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.operand()?;
        Ok(Expr::Compare {
            left: Box::new(left),
            right: Box::new(right),
            negated,
        })
    }

    fn operand(&mut self) -> Result<Expr, String> {
        match self.dialect {
            Dialect::Search => self.union(),
            Dialect::Patch => self.term(),
        }
    }

    fn union(&mut self) -> Result<Expr, String> {
        let first = self.type_test()?;
        if self.peek() != Some(&Token::Pipe) {
            return Ok(first);
        }
        let mut operands = vec![first];
        while self.eat(&Token::Pipe) {
            operands.push(self.type_test()?);
        }
        Ok(Expr::Union(operands))
    }

    /// `term ('is' type | 'as' type)*`; the operators are the functions `is()` and `as()` in
    /// another spelling, so they become steps of the path.
    fn type_test(&mut self) -> Result<Expr, String> {
        let mut e = self.term()?;
        loop {
            let is = if self.keyword("is") {
                true
            } else if self.keyword("as") {
                false
            } else {
                return Ok(e);
            };
            let ty = self.type_spec()?;
            let mut path = match e {
                Expr::Path(p) => p,
                other => Path {
                    head: Head::Expr(Box::new(other)),
                    steps: Vec::new(),
                },
            };
            path.steps
                .push(if is { Step::Is(ty) } else { Step::OfType(ty) });
            e = Expr::Path(path);
        }
    }

    /// A possibly qualified type name (`FHIR.Quantity`); the namespace is irrelevant here.
    fn type_spec(&mut self) -> Result<String, String> {
        let mut name = self.type_name()?;
        while self.eat(&Token::Dot) {
            name = self.type_name()?;
        }
        Ok(name)
    }

    fn type_name(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Ident(name, _)) => Ok(name),
            Some(t) => Err(format!("expected a type name but found {}", t.describe())),
            None => Err(format!(
                "expected a type name but the {} ended",
                noun(self.dialect)
            )),
        }
    }

    /// A parenthesised expression, a literal or a path; in the search dialect a parenthesis or
    /// literal may be navigated from, as in `(Observation.value as Quantity).unit`.
    fn term(&mut self) -> Result<Expr, String> {
        let lone = match self.peek() {
            Some(Token::LParen) => {
                self.pos += 1;
                let inner = self.expr()?;
                self.expect(&Token::RParen)?;
                inner
            }
            Some(Token::Str(_)) | Some(Token::Num(_)) => match self.next() {
                Some(Token::Str(s)) => Expr::Literal(Value::String(s)),
                Some(Token::Num(n)) => Expr::Literal(number(&n)?),
                _ => return Err("expected a literal".to_string()),
            },
            Some(Token::Minus) => {
                self.pos += 1;
                match self.next() {
                    Some(Token::Num(n)) => Expr::Literal(number(&format!("-{n}"))?),
                    _ => return Err("'-' must be followed by a number".to_string()),
                }
            }
            Some(Token::Ident(word, false))
                if (word == "true" || word == "false")
                    && !matches!(
                        self.peek_at(1),
                        Some(Token::Dot | Token::LParen | Token::LBracket)
                    ) =>
            {
                let value = word == "true";
                self.pos += 1;
                Expr::Literal(Value::Bool(value))
            }
            Some(_) => return Ok(Expr::Path(self.path(false)?)),
            None => {
                return Err(match self.dialect {
                    Dialect::Patch => "the criteria end unexpectedly".to_string(),
                    Dialect::Search => "the expression ends unexpectedly".to_string(),
                })
            }
        };
        if self.dialect == Dialect::Search
            && matches!(self.peek(), Some(Token::Dot | Token::LBracket))
        {
            let mut steps = Vec::new();
            self.steps(&mut steps)?;
            return Ok(Expr::Path(Path {
                head: Head::Expr(Box::new(lone)),
                steps,
            }));
        }
        Ok(lone)
    }

    /// `head ('.' name | '.' function | '[' n ']')*`. In a patch path an initial capitalised name
    /// at the top is the resource type (FHIR element names always start in lower case); in a
    /// search expression a leading name is told apart at evaluation.
    fn path(&mut self, top: bool) -> Result<Path, String> {
        let (head, mut steps) = match self.next() {
            Some(Token::Ident(name, quoted)) => {
                if self.peek() == Some(&Token::LParen) {
                    (Head::This, vec![self.function(&name)?])
                } else {
                    match self.dialect {
                        Dialect::Search => (Head::TypeOrChild(name), Vec::new()),
                        Dialect::Patch
                            if top
                                && !quoted
                                && name.starts_with(|c: char| c.is_ascii_uppercase()) =>
                        {
                            (Head::ResourceType(name), Vec::new())
                        }
                        Dialect::Patch => (Head::This, vec![Step::Member(name)]),
                    }
                }
            }
            Some(Token::This) => (Head::This, Vec::new()),
            Some(t) => {
                return Err(format!(
                    "expected an element name but found {}",
                    t.describe()
                ))
            }
            None => return Err(format!("the {} is empty", noun(self.dialect))),
        };
        self.steps(&mut steps)?;
        Ok(Path { head, steps })
    }

    fn steps(&mut self, steps: &mut Vec<Step>) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(Token::Dot) => {
                    self.pos += 1;
                    match self.next() {
                        Some(Token::Ident(name, _)) => {
                            if self.peek() == Some(&Token::LParen) {
                                steps.push(self.function(&name)?);
                            } else {
                                steps.push(Step::Member(name));
                            }
                        }
                        Some(t) => {
                            return Err(format!(
                                "expected an element or function name after '.' but found {}",
                                t.describe()
                            ))
                        }
                        None => return Err(format!("the {} ends with '.'", noun(self.dialect))),
                    }
                }
                Some(Token::LBracket) => {
                    self.pos += 1;
                    let index = match self.next() {
                        Some(Token::Num(n)) => n.parse::<usize>().ok(),
                        _ => None,
                    }
                    .ok_or("an indexer must hold a non-negative integer, e.g. [0]")?;
                    self.expect(&Token::RBracket)?;
                    steps.push(Step::Index(index));
                }
                _ => return Ok(()),
            }
        }
    }

    /// A function call whose name has been read and whose '(' is next.
    fn function(&mut self, name: &str) -> Result<Step, String> {
        let supported = match self.dialect {
            Dialect::Search => SEARCH_FUNCTIONS,
            Dialect::Patch => PATCH_FUNCTIONS,
        };
        if !supported.contains(&name) {
            return Err(format!(
                "unsupported FHIRPath function '{name}()' (supported: {})",
                supported.join(", ")
            ));
        }
        if matches!(name, "as" | "ofType" | "is") {
            // Type arguments are plain names; parsed as such so `as(Quantity)` does not turn
            // into a child lookup.
            let mut types = self.arguments(Self::type_spec)?;
            arity(name, types.len(), 1, 1)?;
            let ty = types.remove(0);
            return Ok(if name == "is" {
                Step::Is(ty)
            } else {
                Step::OfType(ty)
            });
        }
        let mut args = self.arguments(Self::expr)?;
        Ok(match name {
            "where" => {
                arity(name, args.len(), 1, 1)?;
                Step::Where(Box::new(args.remove(0)))
            }
            "exists" => {
                arity(name, args.len(), 0, 1)?;
                Step::Exists(args.pop().map(Box::new))
            }
            _ => {
                arity(name, args.len(), 0, 0)?;
                match name {
                    "empty" => Step::Empty,
                    "not" => Step::Not,
                    "first" => Step::First,
                    "last" => Step::Last,
                    _ => Step::Resolve,
                }
            }
        })
    }

    /// `'(' (arg (',' arg)*)? ')'`, one nesting level deeper.
    fn arguments<T>(
        &mut self,
        mut arg: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        self.expect(&Token::LParen)?;
        self.enter()?;
        let mut args = Vec::new();
        if self.peek() != Some(&Token::RParen) {
            loop {
                args.push(arg(self)?);
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
        }
        self.expect(&Token::RParen)?;
        self.leave();
        Ok(args)
    }
}

fn logic(xor: bool, operands: Vec<Expr>) -> Expr {
    if xor {
        Expr::Xor(operands)
    } else {
        Expr::Or(operands)
    }
}

fn arity(name: &str, given: usize, min: usize, max: usize) -> Result<(), String> {
    if (min..=max).contains(&given) {
        return Ok(());
    }
    let takes = if min == max {
        min.to_string()
    } else {
        format!("{min} to {max}")
    };
    Err(format!(
        "{name}() takes {takes} argument(s) but {given} were given"
    ))
}

/// A number literal's value. FHIRPath allows leading zeros (`007`), which JSON does not.
fn number(text: &str) -> Result<Value, String> {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let trimmed = digits.trim_start_matches('0');
    let digits = if trimmed.is_empty() || trimmed.starts_with('.') {
        &digits[digits.len() - trimmed.len() - 1..]
    } else {
        trimmed
    };
    serde_json::from_str(&format!("{sign}{digits}"))
        .map_err(|_| format!("'{text}' is not a valid number"))
}
