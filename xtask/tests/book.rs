//! The book's sources as `cargo xtask book` and `verify` read them: hints,
//! `{{#...}}` directives, include anchors and paths.

use std::collections::BTreeMap;
use std::path::Path;

use xtask::book::{directives, expand_hints, is_indented, missing_anchor, normalize};

fn hints() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([(
        "overload".to_owned(),
        vec!["Look at `main`.".to_owned(), "Use a semaphore.".to_owned()],
    )])
}

#[test]
fn hints_expand_into_one_details_block_each() {
    let (page, problems) = expand_hints("## Hints\n\n{{#hints overload}}\n\nAfter.", &hints());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        page,
        "## Hints\n\n\
         <details>\n<summary>Hint 1</summary>\n\nLook at `main`.\n\n</details>\n\n\
         <details>\n<summary>Hint 2</summary>\n\nUse a semaphore.\n\n</details>\
         \n\nAfter."
    );
}

#[test]
fn hints_for_an_unknown_lab_are_a_problem() {
    let (page, problems) = expand_hints("{{#hints overlaod}}", &hints());
    assert!(page.contains("there is no lab `overlaod`"), "{page}");
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("the slugs are: overload"), "{problems:?}");
}

#[test]
fn escaped_hints_are_left_for_mdbook_to_unescape() {
    let text = r"write \{{#hints overload}} in a chapter";
    let (page, problems) = expand_hints(text, &hints());
    assert_eq!(page, text);
    assert!(problems.is_empty());
}

#[test]
fn a_missing_anchor_or_anchor_end_is_named() {
    let code = "// ANCHOR: handler\nfn f() {}\n// ANCHOR_END: handler\n// ANCHOR: open\n";
    assert_eq!(missing_anchor(code, "handler"), None);
    assert_eq!(missing_anchor(code, "hand"), Some("ANCHOR: hand".into()));
    assert_eq!(missing_anchor(code, "open"), Some("ANCHOR_END: open".into()));
}

#[test]
fn an_indented_include_is_told_apart_from_one_at_the_line_start() {
    let text = "- item:\n\n  ```rust\n  {{#include a.rs:x}}\n  ```\n{{#include b.rs}}\nsee {{#include c.rs}}";
    let found = directives(text);
    let indented: Vec<bool> = found.iter().map(|d| is_indented(text, d.start)).collect();
    assert_eq!(indented, [true, false, false]);
}

#[test]
fn paths_are_normalized_without_the_disk() {
    assert_eq!(
        normalize(Path::new("/w/book/src/../../labs/./01-x/src/lib.rs")),
        Path::new("/w/labs/01-x/src/lib.rs")
    );
}

#[test]
fn directives_are_found_like_mdbook_finds_them() {
    let text = "a {{#include ../x.rs:anchor}} b {{ #hints  hello }} {{not}} {{#title}}";
    let found = directives(text);
    assert_eq!(found.len(), 2);
    assert_eq!((found[0].name, found[0].args), ("include", "../x.rs:anchor"));
    assert_eq!((found[1].name, found[1].args), ("hints", "hello"));
}
