//! The FHIRPath subset that FHIRPath Patch paths need: an optional leading type name, member
//! navigation, `[n]` indexers, and the functions `where(criteria)`, `first()` and `last()`, where
//! criteria compare paths with string, boolean and number literals using `=`/`!=`, joined with
//! `and`/`or`.
//!
//! Parsing produces a small AST; [`super::select`] evaluates it against a resource.

/// Longest path expression accepted, far beyond any real patch.
const MAX_EXPRESSION_LEN: usize = 4096;
/// Deepest nesting of parentheses and `where()` accepted, bounding recursion in the parser and
/// the evaluator.
const MAX_NESTING: usize = 32;

/// A navigation path: where it starts and the steps taken from there.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    /// A leading type name (`Patient` in `Patient.name`), only at the top of an expression.
    pub root: Option<String>,
    /// Steps applied in order to the starting collection.
    pub steps: Vec<Step>,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Child elements by name, flattened across repeats.
    Member(String),
    /// The n-th item (0-based) of the collection so far.
    Index(usize),
    /// Items for which the criteria are true.
    Where(Box<Expr>),
    /// The first item, if any.
    First,
    /// The last item, if any.
    Last,
}

/// A criteria expression inside `where()`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// A path relative to the item being tested (`$this`).
    Path(Path),
    /// A literal value.
    Literal(Literal),
    /// `left = right`, or `left != right` when `negated`.
    Compare {
        left: Box<Expr>,
        right: Box<Expr>,
        negated: bool,
    },
    /// All operands true; kept flat so a long chain does not deepen recursion.
    And(Vec<Expr>),
    /// Any operand true; kept flat for the same reason.
    Or(Vec<Expr>),
}

/// A literal in criteria.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    String(String),
    Bool(bool),
    /// The number's text, compared by value at evaluation.
    Number(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// An identifier and whether it was written with backticks (and so is never a keyword).
    Ident(String, bool),
    This,
    Str(String),
    Num(String),
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eq,
    NotEq,
    Minus,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(name, _) => format!("'{name}'"),
            Token::This => "'$this'".to_string(),
            Token::Str(s) => format!("string '{s}'"),
            Token::Num(n) => format!("number {n}"),
            Token::Dot => "'.'".to_string(),
            Token::LParen => "'('".to_string(),
            Token::RParen => "')'".to_string(),
            Token::LBracket => "'['".to_string(),
            Token::RBracket => "']'".to_string(),
            Token::Comma => "','".to_string(),
            Token::Eq => "'='".to_string(),
            Token::NotEq => "'!='".to_string(),
            Token::Minus => "'-'".to_string(),
        }
    }
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            c if c.is_whitespace() => i += 1,
            '.' => push(&mut tokens, &mut i, Token::Dot),
            '(' => push(&mut tokens, &mut i, Token::LParen),
            ')' => push(&mut tokens, &mut i, Token::RParen),
            '[' => push(&mut tokens, &mut i, Token::LBracket),
            ']' => push(&mut tokens, &mut i, Token::RBracket),
            ',' => push(&mut tokens, &mut i, Token::Comma),
            '=' => push(&mut tokens, &mut i, Token::Eq),
            '-' => push(&mut tokens, &mut i, Token::Minus),
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Token::NotEq);
                i += 2;
            }
            '\'' => {
                let (s, next) = quoted(&chars, i, '\'')?;
                tokens.push(Token::Str(s));
                i = next;
            }
            '`' => {
                let (s, next) = quoted(&chars, i, '`')?;
                tokens.push(Token::Ident(s, true));
                i = next;
            }
            '$' => {
                let end = scan(&chars, i + 1, |c| c.is_ascii_alphanumeric() || c == '_');
                let word: String = chars[i + 1..end].iter().collect();
                if word != "this" {
                    return Err(format!("unsupported variable '${word}'"));
                }
                tokens.push(Token::This);
                i = end;
            }
            c if c.is_ascii_digit() => {
                let mut end = scan(&chars, i, |c| c.is_ascii_digit());
                // A '.' is part of the number only when digits follow; otherwise it is navigation.
                if chars.get(end) == Some(&'.')
                    && chars.get(end + 1).is_some_and(char::is_ascii_digit)
                {
                    end = scan(&chars, end + 1, |c| c.is_ascii_digit());
                }
                tokens.push(Token::Num(chars[i..end].iter().collect()));
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let end = scan(&chars, i, |c| c.is_ascii_alphanumeric() || c == '_');
                tokens.push(Token::Ident(chars[i..end].iter().collect(), false));
                i = end;
            }
            other => {
                return Err(format!(
                    "unexpected character '{other}' at position {}",
                    i + 1
                ))
            }
        }
    }
    Ok(tokens)
}

fn push(tokens: &mut Vec<Token>, i: &mut usize, token: Token) {
    tokens.push(token);
    *i += 1;
}

fn scan(chars: &[char], from: usize, accept: impl Fn(char) -> bool) -> usize {
    let mut end = from;
    while chars.get(end).is_some_and(|&c| accept(c)) {
        end += 1;
    }
    end
}

/// Reads a quoted string or backtick identifier starting at `start` (the opening quote), handling
/// FHIRPath's backslash escapes; returns the text and the index after the closing quote.
fn quoted(chars: &[char], start: usize, quote: char) -> Result<(String, usize), String> {
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => return Err(format!("unterminated {quote}-quoted text")),
            Some(&c) if c == quote => return Ok((out, i + 1)),
            Some('\\') => {
                let escaped = match chars.get(i + 1) {
                    Some('n') => '\n',
                    Some('r') => '\r',
                    Some('t') => '\t',
                    Some('f') => '\u{c}',
                    Some('u') => {
                        let hex: String = chars.get(i + 2..i + 6).unwrap_or(&[]).iter().collect();
                        let code = u32::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 4)
                            .and_then(char::from_u32)
                            .ok_or_else(|| format!("invalid escape '\\u{hex}'"))?;
                        out.push(code);
                        i += 6;
                        continue;
                    }
                    Some(&c @ ('\'' | '"' | '`' | '\\' | '/')) => c,
                    Some(c) => return Err(format!("invalid escape '\\{c}'")),
                    None => return Err(format!("unterminated {quote}-quoted text")),
                };
                out.push(escaped);
                i += 2;
            }
            Some(&c) => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// Parses a top-level path such as `Patient.identifier.where(system = 'x').value`; the leading
/// type name is optional.
pub(crate) fn parse_path(text: &str) -> Result<Path, String> {
    if text.len() > MAX_EXPRESSION_LEN {
        return Err(format!(
            "the path is longer than {MAX_EXPRESSION_LEN} characters"
        ));
    }
    let tokens = lex(text)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let path = parser.path(true)?;
    if let Some(extra) = parser.peek() {
        return Err(format!(
            "unexpected {} after the path (only navigation, [n], where(), first() and last() are supported)",
            extra.describe()
        ));
    }
    Ok(path)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
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

    fn expect(&mut self, want: &Token) -> Result<(), String> {
        match self.next() {
            Some(ref t) if t == want => Ok(()),
            Some(t) => Err(format!(
                "expected {} but found {}",
                want.describe(),
                t.describe()
            )),
            None => Err(format!("expected {} but the path ended", want.describe())),
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!(
                "the path nests more than {MAX_NESTING} levels of parentheses or where()"
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `head ('.' name | '.' function | '[' n ']')*`; at the top, an initial capitalised name is
    /// the resource type (FHIR element names always start in lower case).
    fn path(&mut self, top: bool) -> Result<Path, String> {
        let mut root = None;
        let mut steps = Vec::new();
        match self.next() {
            Some(Token::Ident(name, quoted)) => {
                if self.peek() == Some(&Token::LParen) {
                    steps.push(self.function(&name)?);
                } else if top && !quoted && name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    root = Some(name);
                } else {
                    steps.push(Step::Member(name));
                }
            }
            Some(Token::This) => {}
            Some(t) => {
                return Err(format!(
                    "expected an element name but found {}",
                    t.describe()
                ))
            }
            None => return Err("the path is empty".to_string()),
        }
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
                        None => return Err("the path ends with '.'".to_string()),
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
                _ => break,
            }
        }
        Ok(Path { root, steps })
    }

    /// A function call whose name has been read and whose '(' is next.
    fn function(&mut self, name: &str) -> Result<Step, String> {
        self.expect(&Token::LParen)?;
        self.enter()?;
        let mut args = Vec::new();
        if self.peek() != Some(&Token::RParen) {
            loop {
                args.push(self.expr()?);
                if self.peek() == Some(&Token::Comma) {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        self.expect(&Token::RParen)?;
        self.leave();
        let arity = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "{name}() takes {n} argument(s) but {} were given",
                    args.len()
                ))
            }
        };
        match name {
            "where" => {
                arity(1)?;
                let criteria = args.pop().ok_or("where() needs criteria")?;
                Ok(Step::Where(Box::new(criteria)))
            }
            "first" => arity(0).map(|_| Step::First),
            "last" => arity(0).map(|_| Step::Last),
            other => Err(format!(
                "unsupported FHIRPath function '{other}()' (supported: where, first, last)"
            )),
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        self.enter()?;
        let mut operands = vec![self.and_expr()?];
        while self.keyword("or") {
            operands.push(self.and_expr()?);
        }
        self.leave();
        Ok(if operands.len() == 1 {
            operands.remove(0)
        } else {
            Expr::Or(operands)
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

    /// Consumes an unquoted keyword if it is next.
    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(w, false)) if w == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.term()?;
        let negated = match self.peek() {
            Some(Token::Eq) => false,
            Some(Token::NotEq) => true,
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.term()?;
        Ok(Expr::Compare {
            left: Box::new(left),
            right: Box::new(right),
            negated,
        })
    }

    fn term(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(Token::LParen) => {
                self.pos += 1;
                let inner = self.expr()?;
                self.expect(&Token::RParen)?;
                Ok(inner)
            }
            Some(Token::Str(_)) | Some(Token::Num(_)) => match self.next() {
                Some(Token::Str(s)) => Ok(Expr::Literal(Literal::String(s))),
                Some(Token::Num(n)) => Ok(Expr::Literal(Literal::Number(n))),
                _ => Err("expected a literal".to_string()),
            },
            Some(Token::Minus) => {
                self.pos += 1;
                match self.next() {
                    Some(Token::Num(n)) => Ok(Expr::Literal(Literal::Number(format!("-{n}")))),
                    _ => Err("'-' must be followed by a number".to_string()),
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
                Ok(Expr::Literal(Literal::Bool(value)))
            }
            Some(_) => Ok(Expr::Path(self.path(false)?)),
            None => Err("the criteria end unexpectedly".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str) -> Step {
        Step::Member(name.to_string())
    }

    fn string(s: &str) -> Box<Expr> {
        Box::new(Expr::Literal(Literal::String(s.to_string())))
    }

    fn rel(names: &[&str]) -> Box<Expr> {
        Box::new(Expr::Path(Path {
            root: None,
            steps: names.iter().map(|n| member(n)).collect(),
        }))
    }

    #[test]
    fn simple_paths() {
        let p = parse_path("Patient.name[0].given").unwrap();
        assert_eq!(p.root.as_deref(), Some("Patient"));
        assert_eq!(p.steps, [member("name"), Step::Index(0), member("given")]);
        let p = parse_path(" name . given ").unwrap();
        assert_eq!(p.root, None);
        assert_eq!(p.steps, [member("name"), member("given")]);
        let p = parse_path("Patient").unwrap();
        assert!(p.steps.is_empty());
        let p = parse_path("Patient.`div`.first().last()").unwrap();
        assert_eq!(p.steps, [member("div"), Step::First, Step::Last]);
    }

    #[test]
    fn where_with_and_or_and_literals() {
        let p = parse_path("Patient.telecom.where(system='phone' and use = 'home')").unwrap();
        let expected = Expr::And(vec![
            Expr::Compare {
                left: rel(&["system"]),
                right: string("phone"),
                negated: false,
            },
            Expr::Compare {
                left: rel(&["use"]),
                right: string("home"),
                negated: false,
            },
        ]);
        assert_eq!(
            p.steps,
            [member("telecom"), Step::Where(Box::new(expected))]
        );

        let p = parse_path("x.where(a.b != true or (n = -1.5) or $this = 'it''s')");
        assert!(p.is_err(), "doubled quote is not an escape in FHIRPath");
        let p = parse_path(r"x.where(a.b != true or (n = -1.5) or $this = 'it\'s')").unwrap();
        let Step::Where(criteria) = &p.steps[1] else {
            panic!("expected where")
        };
        let Expr::Or(operands) = criteria.as_ref() else {
            panic!("expected or")
        };
        assert_eq!(operands.len(), 3);
        assert_eq!(
            operands[1],
            Expr::Compare {
                left: rel(&["n"]),
                right: Box::new(Expr::Literal(Literal::Number("-1.5".into()))),
                negated: false
            }
        );
        assert_eq!(
            operands[2],
            Expr::Compare {
                left: Box::new(Expr::Path(Path {
                    root: None,
                    steps: vec![]
                })),
                right: string("it's"),
                negated: false
            }
        );
    }

    #[test]
    fn criteria_paths_may_use_functions_and_indexers() {
        let p = parse_path("identifier.where(type.coding[0].code = 'MR').value").unwrap();
        assert_eq!(p.steps.len(), 3);
        let p = parse_path("name.where(given.first() = 'Jim')").unwrap();
        assert_eq!(p.steps.len(), 2);
    }

    #[test]
    fn errors() {
        for (text, fragment) in [
            ("", "empty"),
            ("Patient.", "ends with"),
            (
                "Patient.name.exists()",
                "unsupported FHIRPath function 'exists()'",
            ),
            (
                "Patient.name.ofType(HumanName)",
                "unsupported FHIRPath function",
            ),
            ("Patient.name[x]", "indexer"),
            ("Patient.name[-1]", "indexer"),
            ("Patient.name[0", "expected"),
            ("Patient.name.where(use = 'x'", "expected"),
            ("Patient.name.where()", "takes 1"),
            ("Patient.name.where(use = )", "expected an element name"),
            ("Patient.name.where(use =", "criteria end"),
            ("Patient.name.first(1)", "takes 0"),
            ("Patient.name.where(a, b)", "takes 1"),
            ("Patient.name.where(use = 'x)", "unterminated"),
            ("Patient.name | Patient.x", "unexpected character"),
            ("Patient.name Patient", "after the path"),
            ("Patient.name.where(use < 'x')", "unexpected character"),
            ("Patient.name.where(use = $index)", "unsupported variable"),
            ("Patient.name.where(use = 'a\\q')", "invalid escape"),
        ] {
            let e = parse_path(text).unwrap_err();
            assert!(e.contains(fragment), "{text}: {e}");
        }
    }

    #[test]
    fn nesting_is_capped() {
        let deep = format!("a.where({}b = 1{})", "(".repeat(100), ")".repeat(100));
        assert!(parse_path(&deep).unwrap_err().contains("nests more than"));
        let long = "a".repeat(MAX_EXPRESSION_LEN + 1);
        assert!(parse_path(&long).is_err());
        let chain = format!("a.where({})", vec!["b = 1"; 300].join(" and "));
        assert!(parse_path(&chain).is_ok());
    }

    #[test]
    fn unicode_escape() {
        let p = parse_path(r"a.where(b = '\u00e9')").unwrap();
        let Step::Where(c) = &p.steps[1] else {
            panic!("expected where")
        };
        assert_eq!(
            **c,
            Expr::Compare {
                left: rel(&["b"]),
                right: string("é"),
                negated: false
            }
        );
    }
}
