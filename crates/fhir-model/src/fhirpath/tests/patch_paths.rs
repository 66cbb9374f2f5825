//! Parsing in the patch dialect: the paths FHIRPath Patch operations address elements by.

use serde_json::Value;

use super::super::ast::{Dialect, Expr, Head, Path, Step};
use super::super::parse::{parse, MAX_EXPRESSION_LEN};

fn member(name: &str) -> Step {
    Step::Member(name.to_string())
}

fn string(s: &str) -> Box<Expr> {
    Box::new(Expr::Literal(Value::String(s.to_string())))
}

fn rel(names: &[&str]) -> Box<Expr> {
    Box::new(Expr::Path(Path {
        head: Head::This,
        steps: names.iter().map(|n| member(n)).collect(),
    }))
}

/// The patch parser's result as a path, which every patch expression is.
fn parse_path(text: &str) -> Result<Path, String> {
    match parse(text, Dialect::Patch)?.expr {
        Expr::Path(p) => Ok(p),
        other => panic!("{text} parsed as {other:?}"),
    }
}

/// The leading resource type of a path, if it names one.
fn root(p: &Path) -> Option<&str> {
    match &p.head {
        Head::ResourceType(t) => Some(t),
        _ => None,
    }
}

#[test]
fn simple_paths() {
    let p = parse_path("Patient.name[0].given").unwrap();
    assert_eq!(root(&p), Some("Patient"));
    assert_eq!(p.steps, [member("name"), Step::Index(0), member("given")]);
    let p = parse_path(" name . given ").unwrap();
    assert_eq!(root(&p), None);
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
            right: Box::new(Expr::Literal(serde_json::from_str("-1.5").unwrap())),
            negated: false
        }
    );
    assert_eq!(
        operands[2],
        Expr::Compare {
            left: Box::new(Expr::Path(Path {
                head: Head::This,
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

#[test]
fn search_only_constructs_are_refused() {
    for text in [
        "Patient.name.where(use = 'a' xor use = 'b')",
        "Patient.name.where(use is string)",
        "Patient.name.where(use as string = 'a')",
        "(Patient.name).given",
        "Patient.name.where('a'.length() = 1)",
        "Patient.name.where(a = b = c)",
        "Patient.name.where(exists())",
    ] {
        assert!(parse_path(text).is_err(), "{text}");
    }
}
