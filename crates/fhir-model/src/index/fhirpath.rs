//! A FHIRPath subset over FHIR JSON, just enough for the search-parameter and compartment
//! expressions in the embedded table.
//!
//! Supported: paths (arrays flatten, choice elements such as `value[x]` resolve from
//! `valueQuantity` etc.), `|`, `and`/`or`/`xor`, `=`/`!=`, `is`/`as`, parentheses, string, number
//! and boolean literals, `$this`, and the functions `where`, `exists`, `empty`, `not`, `first`,
//! `as`, `ofType`, `is` and `resolve` (which only works out the target type of a reference, so
//! `resolve() is Patient` can filter references without a database).
//! Anything else is rejected at parse time so an unsupported expression is found by the tests,
//! not silently evaluated to nothing.

use rust_decimal::Decimal;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// A parse failure, with the offending expression text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// `$this`: the current focus.
    This,
    /// A literal value.
    Literal(Value),
    /// An identifier at the start of a path: a type name matching the focus, else a child.
    Ident(String),
    /// `base.name`.
    Member(Box<Expr>, String),
    /// `base.fn(args)`; base is `This` for a bare call.
    Call(Box<Expr>, Func, Vec<Expr>),
    /// `base is Type` (`true`) or `base as Type` (`false`).
    TypeOp(Box<Expr>, bool, String),
    /// A binary operator.
    Binary(Op, Box<Expr>, Box<Expr>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Union,
    And,
    Or,
    Xor,
    Eq,
    Ne,
}

/// Supported functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Where,
    Exists,
    Empty,
    Not,
    First,
    As,
    OfType,
    Is,
    Resolve,
}

impl Func {
    fn from_name(name: &str) -> Option<(Func, usize, usize)> {
        // (function, min args, max args)
        Some(match name {
            "where" => (Func::Where, 1, 1),
            "exists" => (Func::Exists, 0, 1),
            "empty" => (Func::Empty, 0, 0),
            "not" => (Func::Not, 0, 0),
            "first" => (Func::First, 0, 0),
            "as" => (Func::As, 1, 1),
            "ofType" => (Func::OfType, 1, 1),
            "is" => (Func::Is, 1, 1),
            "resolve" => (Func::Resolve, 0, 0),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Sym(&'static str),
}

fn tokenize(src: &str) -> Result<Vec<Tok>, ParseError> {
    let err = |m: &str| ParseError(format!("{m} in `{src}`"));
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' || c == '$' {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c == '`' {
            let start = i + 1;
            i = start;
            while i < chars.len() && chars[i] != '`' {
                i += 1;
            }
            if i >= chars.len() {
                return Err(err("unterminated identifier"));
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(err("unterminated string")),
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let e = chars.get(i + 1).ok_or_else(|| err("bad escape"))?;
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => *other,
                        });
                        i += 2;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = match two.as_str() {
                "!=" => Some("!="),
                _ => None,
            };
            if let Some(s) = sym {
                out.push(Tok::Sym(s));
                i += 2;
                continue;
            }
            let s = match c {
                '.' => ".",
                '(' => "(",
                ')' => ")",
                ',' => ",",
                '|' => "|",
                '=' => "=",
                _ => return Err(err(&format!("unsupported character `{c}`"))),
            };
            out.push(Tok::Sym(s));
            i += 1;
        }
    }
    Ok(out)
}

struct Parser<'s> {
    toks: Vec<Tok>,
    pos: usize,
    src: &'s str,
}

impl Parser<'_> {
    fn err(&self, m: &str) -> ParseError {
        ParseError(format!("{m} at token {} in `{}`", self.pos, self.src))
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == s)
    }

    fn peek_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(x)) if x == w)
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), ParseError> {
        if self.peek_sym(s) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected `{s}`")))
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.err("expected identifier")),
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.and()?;
        loop {
            let op = if self.peek_word("or") {
                Op::Or
            } else if self.peek_word("xor") {
                Op::Xor
            } else {
                return Ok(lhs);
            };
            self.pos += 1;
            let rhs = self.and()?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.equality()?;
        while self.peek_word("and") {
            self.pos += 1;
            let rhs = self.equality()?;
            lhs = Expr::Binary(Op::And, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn equality(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.union()?;
        loop {
            let op = if self.peek_sym("=") {
                Op::Eq
            } else if self.peek_sym("!=") {
                Op::Ne
            } else {
                return Ok(lhs);
            };
            self.pos += 1;
            let rhs = self.union()?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn union(&mut self) -> Result<Expr, ParseError> {
        let mut lhs = self.type_op()?;
        while self.peek_sym("|") {
            self.pos += 1;
            let rhs = self.type_op()?;
            lhs = Expr::Binary(Op::Union, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn type_op(&mut self) -> Result<Expr, ParseError> {
        let mut base = self.invocation()?;
        loop {
            let is = if self.peek_word("is") {
                true
            } else if self.peek_word("as") {
                false
            } else {
                return Ok(base);
            };
            self.pos += 1;
            let t = self.type_spec()?;
            base = Expr::TypeOp(Box::new(base), is, t);
        }
    }

    /// A possibly qualified type name (`FHIR.Quantity`); the namespace is irrelevant here.
    fn type_spec(&mut self) -> Result<String, ParseError> {
        let mut t = self.ident()?;
        while self.peek_sym(".") {
            self.pos += 1;
            t = self.ident()?;
        }
        Ok(t)
    }

    fn invocation(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.term()?;
        while self.peek_sym(".") {
            self.pos += 1;
            let name = self.ident()?;
            e = if self.peek_sym("(") {
                self.call(e, &name)?
            } else {
                Expr::Member(Box::new(e), name)
            };
        }
        Ok(e)
    }

    fn call(&mut self, base: Expr, name: &str) -> Result<Expr, ParseError> {
        let (f, min, max) = Func::from_name(name)
            .ok_or_else(|| self.err(&format!("unsupported function {name}")))?;
        self.expect_sym("(")?;
        let mut args = Vec::new();
        if !self.peek_sym(")") {
            loop {
                // Type arguments are plain names; parse them as such so `as(Quantity)` does not
                // turn into a child lookup.
                if matches!(f, Func::As | Func::OfType | Func::Is) {
                    args.push(Expr::Ident(self.type_spec()?));
                } else {
                    args.push(self.or()?);
                }
                if self.peek_sym(",") {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        self.expect_sym(")")?;
        if args.len() < min || args.len() > max {
            return Err(self.err(&format!("wrong argument count for {name}")));
        }
        Ok(Expr::Call(Box::new(base), f, args))
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Sym("(")) => {
                self.pos += 1;
                let e = self.or()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Expr::Literal(Value::String(s)))
            }
            Some(Tok::Num(n)) => {
                self.pos += 1;
                let v: Value = serde_json::from_str(&n).map_err(|_| self.err("bad number"))?;
                Ok(Expr::Literal(v))
            }
            Some(Tok::Ident(w)) => {
                self.pos += 1;
                match w.as_str() {
                    "true" => Ok(Expr::Literal(Value::Bool(true))),
                    "false" => Ok(Expr::Literal(Value::Bool(false))),
                    "$this" => Ok(Expr::This),
                    _ if w.starts_with('$') => Err(self.err("unsupported variable")),
                    _ if self.peek_sym("(") => self.call(Expr::This, &w),
                    _ => Ok(Expr::Ident(w)),
                }
            }
            _ => Err(self.err("expected a term")),
        }
    }
}

/// Parse a FHIRPath expression of the supported subset.
pub(crate) fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = tokenize(src)?;
    let mut p = Parser { toks, pos: 0, src };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(p.err("trailing input"));
    }
    Ok(e)
}

/// One item of a FHIRPath collection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node<'a> {
    /// The JSON value (owned for computed booleans).
    pub value: Cow<'a, Value>,
    /// The element name it was reached by (e.g. `telecom`), to tell look-alike types apart.
    pub name: Option<&'a str>,
    /// The FHIR type when known: from a choice suffix (`valueQuantity`) or from `resolve()`.
    pub type_name: Option<String>,
}

impl<'a> Node<'a> {
    /// The evaluation root: a resource.
    pub fn root(v: &'a Value) -> Self {
        Node {
            value: Cow::Borrowed(v),
            name: None,
            type_name: None,
        }
    }

    fn computed(v: Value) -> Self {
        Node {
            value: Cow::Owned(v),
            name: None,
            type_name: None,
        }
    }

    /// The FHIR type of this item, given or guessed from the JSON.
    fn fhir_type(&self) -> Option<&str> {
        if let Some(t) = &self.type_name {
            return Some(t);
        }
        match self.value.as_ref() {
            Value::Bool(_) => Some("boolean"),
            Value::String(_) => Some("string"),
            Value::Number(_) => Some("decimal"),
            Value::Object(o) => o.get("resourceType").and_then(Value::as_str),
            _ => None,
        }
    }
}

/// FHIR data types that can appear as a choice-element suffix (`value[x]` → `valueQuantity`).
const CHOICE_TYPES: &[&str] = &[
    "Base64Binary",
    "Boolean",
    "Canonical",
    "Code",
    "Date",
    "DateTime",
    "Decimal",
    "Id",
    "Instant",
    "Integer",
    "Markdown",
    "Oid",
    "PositiveInt",
    "String",
    "Time",
    "UnsignedInt",
    "Uri",
    "Url",
    "Uuid",
    "Address",
    "Age",
    "Annotation",
    "Attachment",
    "CodeableConcept",
    "Coding",
    "ContactPoint",
    "Count",
    "Distance",
    "Duration",
    "HumanName",
    "Identifier",
    "Money",
    "Period",
    "Quantity",
    "Range",
    "Ratio",
    "Reference",
    "SampledData",
    "Signature",
    "Timing",
    "ContactDetail",
    "Contributor",
    "DataRequirement",
    "Expression",
    "ParameterDefinition",
    "RelatedArtifact",
    "TriggerDefinition",
    "UsageContext",
    "Dosage",
    "Meta",
];

/// FHIR spells primitive type names in lower camel case (`dateTime`), complex ones in Pascal case.
fn choice_type_name(suffix: &str) -> String {
    const PRIMITIVE: &[&str] = &[
        "Base64Binary",
        "Boolean",
        "Canonical",
        "Code",
        "Date",
        "DateTime",
        "Decimal",
        "Id",
        "Instant",
        "Integer",
        "Markdown",
        "Oid",
        "PositiveInt",
        "String",
        "Time",
        "UnsignedInt",
        "Uri",
        "Url",
        "Uuid",
    ];
    if PRIMITIVE.contains(&suffix) {
        let mut c = suffix.chars();
        let first = c.next().map(|f| f.to_ascii_lowercase()).unwrap_or_default();
        std::iter::once(first).chain(c).collect()
    } else {
        suffix.to_string()
    }
}

/// Whether an item of type `actual` satisfies a type test against `wanted`.
fn type_matches(actual: Option<&str>, wanted: &str) -> bool {
    let Some(actual) = actual else {
        return false;
    };
    if actual.eq_ignore_ascii_case(wanted) {
        return true;
    }
    // Quantity's profiles are Quantities too.
    wanted.eq_ignore_ascii_case("Quantity")
        && matches!(
            actual,
            "Age" | "Count" | "Distance" | "Duration" | "SimpleQuantity" | "MoneyQuantity"
        )
}

fn push_flat<'a>(out: &mut Vec<Node<'a>>, v: &'a Value, name: &'a str, type_name: Option<String>) {
    match v {
        Value::Array(items) => {
            for item in items.iter().filter(|i| !i.is_null()) {
                out.push(Node {
                    value: Cow::Borrowed(item),
                    name: Some(name),
                    type_name: type_name.clone(),
                });
            }
        }
        Value::Null => {}
        other => out.push(Node {
            value: Cow::Borrowed(other),
            name: Some(name),
            type_name,
        }),
    }
}

/// The children called `name` of a node; choice elements resolve through their type suffix.
fn children<'a>(node: &Node<'a>, name: &str, out: &mut Vec<Node<'a>>) {
    // Computed values have no children, and only borrowed objects can lend out references.
    let Cow::Borrowed(Value::Object(obj)) = node.value else {
        return;
    };
    if let Some((k, v)) = obj.get_key_value(name) {
        push_flat(out, v, k, None);
        return;
    }
    for (k, v) in obj.iter() {
        if let Some(suffix) = k.strip_prefix(name) {
            if CHOICE_TYPES.contains(&suffix) {
                push_flat(out, v, k, Some(choice_type_name(suffix)));
            }
        }
    }
}

/// The resource type a Reference (or canonical string) points at, when it can be told from the text.
pub(crate) fn reference_type(v: &Value) -> Option<String> {
    let (text, declared) = match v {
        Value::String(s) => (Some(s.as_str()), None),
        Value::Object(o) => (
            o.get("reference").and_then(Value::as_str),
            o.get("type").and_then(Value::as_str),
        ),
        _ => (None, None),
    };
    if let Some(t) = text.and_then(|t| crate::index::parse_reference(t).target_type) {
        return Some(t);
    }
    declared.map(str::to_string)
}

/// The singleton boolean value of a collection: None when empty, per FHIRPath's three-valued logic.
fn to_bool(c: &[Node<'_>]) -> Option<bool> {
    match c {
        [] => None,
        [n] => Some(n.value.as_bool().unwrap_or(true)),
        _ => Some(true),
    }
}

fn bool_coll<'a>(b: Option<bool>) -> Vec<Node<'a>> {
    b.map(|b| vec![Node::computed(Value::Bool(b))])
        .unwrap_or_default()
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (
                Decimal::from_str(&x.to_string()),
                Decimal::from_str(&y.to_string()),
            ) {
                (Ok(x), Ok(y)) => x == y,
                _ => x.to_string() == y.to_string(),
            }
        }
        _ => a == b,
    }
}

fn equal(a: &[Node<'_>], b: &[Node<'_>]) -> Option<bool> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    Some(
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| values_equal(&x.value, &y.value)),
    )
}

fn type_arg(args: &[Expr]) -> &str {
    match args.first() {
        Some(Expr::Ident(t)) => t,
        _ => "",
    }
}

/// Evaluate `e` with `focus` as the input collection.
pub(crate) fn eval<'a>(e: &Expr, focus: &[Node<'a>]) -> Vec<Node<'a>> {
    match e {
        Expr::This => focus.to_vec(),
        Expr::Literal(v) => vec![Node::computed(v.clone())],
        Expr::Ident(name) => {
            let mut out = Vec::new();
            for n in focus {
                let is_type = name.starts_with(|c: char| c.is_ascii_uppercase())
                    && n.value
                        .get("resourceType")
                        .and_then(Value::as_str)
                        .is_some_and(|rt| {
                            rt == name || name == "Resource" || name == "DomainResource"
                        });
                if is_type {
                    out.push(n.clone());
                } else {
                    children(n, name, &mut out);
                }
            }
            out
        }
        Expr::Member(base, name) => {
            let mut out = Vec::new();
            for n in &eval(base, focus) {
                children(n, name, &mut out);
            }
            out
        }
        Expr::TypeOp(base, is, t) => {
            let input = eval(base, focus);
            if *is {
                is_type(&input, t)
            } else {
                input
                    .into_iter()
                    .filter(|n| type_matches(n.fhir_type(), t))
                    .collect()
            }
        }
        Expr::Call(base, f, args) => {
            let input = eval(base, focus);
            call(*f, input, args)
        }
        Expr::Binary(op, l, r) => {
            let lv = eval(l, focus);
            let rv = eval(r, focus);
            match op {
                Op::Union => {
                    let mut out = lv;
                    for n in rv {
                        if !out.iter().any(|o| o.value == n.value) {
                            out.push(n);
                        }
                    }
                    out
                }
                Op::And => bool_coll(match (to_bool(&lv), to_bool(&rv)) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                }),
                Op::Or => bool_coll(match (to_bool(&lv), to_bool(&rv)) {
                    (Some(true), _) | (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                }),
                Op::Xor => bool_coll(match (to_bool(&lv), to_bool(&rv)) {
                    (Some(a), Some(b)) => Some(a != b),
                    _ => None,
                }),
                Op::Eq => bool_coll(equal(&lv, &rv)),
                Op::Ne => bool_coll(equal(&lv, &rv).map(|b| !b)),
            }
        }
    }
}

fn is_type<'a>(input: &[Node<'a>], t: &str) -> Vec<Node<'a>> {
    if input.is_empty() {
        return Vec::new();
    }
    bool_coll(Some(input.iter().all(|n| type_matches(n.fhir_type(), t))))
}

fn call<'a>(f: Func, input: Vec<Node<'a>>, args: &[Expr]) -> Vec<Node<'a>> {
    match f {
        Func::Where => input
            .into_iter()
            .filter(|n| to_bool(&eval(&args[0], std::slice::from_ref(n))) == Some(true))
            .collect(),
        Func::Exists => {
            let any = match args.first() {
                Some(crit) => input
                    .iter()
                    .any(|n| to_bool(&eval(crit, std::slice::from_ref(n))) == Some(true)),
                None => !input.is_empty(),
            };
            bool_coll(Some(any))
        }
        Func::Empty => bool_coll(Some(input.is_empty())),
        Func::Not => bool_coll(to_bool(&input).map(|b| !b)),
        Func::First => input.into_iter().take(1).collect(),
        Func::As | Func::OfType => {
            let t = type_arg(args);
            input
                .into_iter()
                .filter(|n| type_matches(n.fhir_type(), t))
                .collect()
        }
        Func::Is => is_type(&input, type_arg(args)),
        Func::Resolve => input
            .into_iter()
            .map(|n| {
                let t = reference_type(&n.value);
                Node { type_name: t, ..n }
            })
            .collect(),
    }
}

/// Parse and evaluate `src` against a resource; unparseable expressions yield nothing.
#[cfg(test)]
pub(crate) fn evaluate<'a>(src: &str, resource: &'a Value) -> Vec<Node<'a>> {
    match parse(src) {
        Ok(e) => eval(&e, &[Node::root(resource)]),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vals(src: &str, r: &Value) -> Vec<Value> {
        parse(src).unwrap_or_else(|e| panic!("{e}"));
        evaluate(src, r)
            .into_iter()
            .map(|n| n.value.into_owned())
            .collect()
    }

    #[test]
    fn every_table_expression_parses() {
        let mut failures = Vec::new();
        for p in crate::search_params::all_params() {
            if matches!(
                p.kind,
                crate::search_params::ParamType::Composite
                    | crate::search_params::ParamType::Special
            ) {
                continue;
            }
            if let Err(e) = parse(&p.expression) {
                failures.push(format!("{}.{}: {e}", p.resource, p.code));
            }
        }
        for p in crate::search_params::all_params() {
            for c in &p.components {
                if let Err(e) = parse(&c.expression) {
                    failures.push(format!("{}.{} component: {e}", p.resource, p.code));
                }
            }
        }
        for (t, ps) in crate::search_params::compartment_table() {
            for p in ps {
                if let Err(e) = parse(&p.expression) {
                    failures.push(format!("compartment {t}.{}: {e}", p.code));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "unsupported expressions:\n{}",
            failures.join("\n")
        );
    }

    #[test]
    fn rejects_unsupported() {
        for src in [
            "Patient.name.select(given)",
            "Patient.x > 3",
            "$index",
            "Patient.(",
        ] {
            assert!(parse(src).is_err(), "{src}");
        }
    }

    #[test]
    fn paths_choices_and_filters() {
        let p = json!({
            "resourceType": "Patient",
            "id": "p1",
            "name": [{"family": "Doe", "given": ["Jane", "Q"]}, {"given": ["J"]}],
            "telecom": [{"system": "phone", "value": "555"}, {"system": "email", "value": "a@b.c"}],
            "deceasedDateTime": "2020-01-01",
            "_birthDate": {"extension": []}
        });
        let cases: &[(&str, Vec<Value>)] = &[
            (
                "Patient.name.given",
                vec![json!("Jane"), json!("Q"), json!("J")],
            ),
            ("Resource.id", vec![json!("p1")]),
            ("Observation.id", vec![]),
            (
                "Patient.telecom.where(system='email').value",
                vec![json!("a@b.c")],
            ),
            ("(Patient.deceased as dateTime)", vec![json!("2020-01-01")]),
            ("Patient.deceased.as(DateTime)", vec![json!("2020-01-01")]),
            ("Patient.deceased.ofType(boolean)", vec![]),
            (
                "Patient.deceased.exists() and Patient.deceased != false",
                vec![json!(true)],
            ),
            ("Patient.birthDate", vec![]),
            (
                "Patient.name.family | Patient.name.family",
                vec![json!("Doe")],
            ),
        ];
        for (src, want) in cases {
            assert_eq!(&vals(src, &p), want, "{src}");
        }
        let alive = json!({"resourceType": "Patient", "deceasedBoolean": false});
        let unknown = json!({"resourceType": "Patient"});
        let expr = "Patient.deceased.exists() and Patient.deceased != false";
        assert_eq!(vals(expr, &alive), vec![json!(false)]);
        assert_eq!(vals(expr, &unknown), vec![json!(false)]);
    }

    #[test]
    fn resolve_is_filters_by_reference_type() {
        let o = json!({
            "resourceType": "Observation",
            "subject": {"reference": "Group/g1"},
            "performer": [
                {"reference": "Practitioner/d1"},
                {"reference": "http://x.org/fhir/Patient/p2"},
                {"type": "Patient", "identifier": {"value": "123"}}
            ],
            "valueCodeableConcept": {"text": "pos"}
        });
        assert!(vals("Observation.subject.where(resolve() is Patient)", &o).is_empty());
        assert_eq!(
            vals("Observation.performer.where(resolve() is Patient)", &o).len(),
            2
        );
        assert_eq!(
            vals("(Observation.value as CodeableConcept).text", &o),
            vec![json!("pos")]
        );
        assert!(vals("(Observation.value as Quantity)", &o).is_empty());
    }
}
