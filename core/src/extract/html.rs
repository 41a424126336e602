//! HTML: the page's main text. Scripts, styles, navigation, headers, footers and forms
//! are left out; when the page marks its main content (`<main>`, or a single
//! `<article>`), only that is read. Headings stay in the text and mark sections; table
//! rows become lines with cells separated by ` | `.

use ego_tree::NodeRef;
use ego_tree::iter::Edge;
use scraper::{Html, Node};

use super::Extracted;

/// Deeper nesting than any real page has. html5ever's tree building is quadratic in the
/// depth of nested blocks (10,000 nested `<div>`s take seconds, 100,000 minutes), so a
/// deeper page is refused before parsing.
const MAX_DEPTH: usize = 1024;

/// Elements whose content is not the page's text.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "head", "nav", "header", "footer", "aside", "form",
    "button", "select", "svg", "canvas", "iframe", "object",
];

/// Elements that end a paragraph where they open and close.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "pre",
    "blockquote",
    "table",
    "figure",
    "figcaption",
    "hr",
    "br",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "address",
    "details",
    "summary",
];

pub(super) fn extract(source: &str) -> Result<Extracted, String> {
    let depth = nesting_depth(source);
    if depth > MAX_DEPTH {
        return Err(format!(
            "elements nested {depth} deep (at most {MAX_DEPTH}): not a page a browser could show"
        ));
    }
    let page = Html::parse_document(source);
    let mut out = Writer::default();
    for edge in main_content(&page).traverse() {
        match edge {
            Edge::Open(node) => out.open(node),
            Edge::Close(node) => out.close(node),
        }
    }
    Ok(out.finish())
}

/// `<main>` if the page has one, else its only `<article>`, else the whole page.
fn main_content(page: &Html) -> NodeRef<'_, Node> {
    if let Some(main) = elements(page, "main").next() {
        return main;
    }
    let mut articles = elements(page, "article");
    match (articles.next(), articles.next()) {
        (Some(article), None) => article,
        _ => page.tree.root(),
    }
}

fn elements<'a>(page: &'a Html, name: &'a str) -> impl Iterator<Item = NodeRef<'a, Node>> {
    page.tree
        .root()
        .descendants()
        .filter(move |n| n.value().as_element().is_some_and(|e| e.name() == name))
}

/// Builds the text from the tree's open and close events (an iterative walk: no
/// recursion for a deep page to overflow).
#[derive(Default)]
struct Writer {
    done: Extracted,
    paragraph: String,
    /// Inside this many skipped elements.
    skipping: usize,
    /// Inside a heading: its text goes to `done.layout.headings` too.
    heading: bool,
}

impl Writer {
    fn open(&mut self, node: NodeRef<'_, Node>) {
        match node.value() {
            Node::Element(e) if SKIPPED.contains(&e.name()) => self.skipping += 1,
            _ if self.skipping > 0 => {}
            Node::Element(e) => match e.name() {
                "tr" => self.end_paragraph("\n"),
                "td" | "th" if !self.paragraph.trim().is_empty() => self.paragraph.push_str(" | "),
                name if BLOCKS.contains(&name) => {
                    self.end_paragraph("\n\n");
                    self.heading = is_heading(name);
                }
                _ => {}
            },
            Node::Text(text) => push_collapsed(&mut self.paragraph, text),
            _ => {}
        }
    }

    fn close(&mut self, node: NodeRef<'_, Node>) {
        let Node::Element(e) = node.value() else {
            return;
        };
        if SKIPPED.contains(&e.name()) {
            self.skipping -= 1;
        } else if self.skipping == 0 && (e.name() == "tr" || BLOCKS.contains(&e.name())) {
            self.end_paragraph(if e.name() == "tr" { "\n" } else { "\n\n" });
        }
    }

    /// Moves the paragraph read so far into the text, `gap` after what is there.
    fn end_paragraph(&mut self, gap: &str) {
        let paragraph = std::mem::take(&mut self.paragraph);
        let heading = std::mem::take(&mut self.heading);
        let paragraph = paragraph.trim();
        if paragraph.is_empty() {
            return;
        }
        let text = &mut self.done.text;
        if !text.is_empty() {
            text.push_str(gap);
        }
        if heading {
            self.done
                .layout
                .headings
                .push((text.len(), paragraph.to_string()));
        }
        text.push_str(paragraph);
    }

    fn finish(mut self) -> Extracted {
        self.end_paragraph("\n\n");
        self.done
    }
}

fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

/// Appends `text` with every run of whitespace as one space, as a browser shows it.
fn push_collapsed(into: &mut String, text: &str) {
    let starts_with_space = text.starts_with(char::is_whitespace);
    let ends_with_space = text.ends_with(char::is_whitespace);
    let mut words = text.split_whitespace();
    let Some(first) = words.next() else {
        if !into.is_empty() && !into.ends_with(' ') {
            into.push(' ');
        }
        return;
    };
    if starts_with_space && !into.is_empty() && !into.ends_with(' ') {
        into.push(' ');
    }
    into.push_str(first);
    for word in words {
        into.push(' ');
        into.push_str(word);
    }
    if ends_with_space {
        into.push(' ');
    }
}

/// The deepest nesting of elements in `source`, by a linear scan of its tags. Elements
/// that never nest (void elements, and those HTML closes implicitly, like `<p>` and
/// `<li>`) are not counted, so a page of unclosed paragraphs is not deep.
fn nesting_depth(source: &str) -> usize {
    const FLAT: &[&str] = &[
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr", "p", "li", "dt", "dd", "td", "th", "tr", "option", "tbody",
        "thead", "tfoot", "colgroup", "rb", "rt", "rp", "optgroup", "!doctype",
    ];
    let bytes = source.as_bytes();
    let (mut depth, mut deepest, mut at) = (0usize, 0usize, 0usize);
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'<') {
        at += offset + 1;
        if bytes[at..].starts_with(b"!--") {
            at += source[at..]
                .find("-->")
                .map_or(bytes.len() - at, |end| end + 3);
            continue;
        }
        let closing = bytes.get(at) == Some(&b'/');
        let name_at = at + usize::from(closing);
        let name_len = bytes[name_at..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'!')
            .count();
        let name = source[name_at..name_at + name_len].to_ascii_lowercase();
        let end = source[at..].find('>').map_or(bytes.len(), |end| at + end);
        let self_closing = end > at && bytes[end - 1] == b'/';
        if name.is_empty() || FLAT.contains(&name.as_str()) || self_closing {
            at = end.min(bytes.len());
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
            deepest = deepest.max(depth);
            if name == "script" || name == "style" {
                // Their content is not markup: skip to the closing tag.
                let close = format!("</{name}");
                let from = end.min(bytes.len());
                at = from
                    + find_ignoring_case(&bytes[from..], close.as_bytes())
                        .unwrap_or(bytes.len() - from);
                continue;
            }
        }
        at = end.min(bytes.len());
    }
    deepest
}

fn find_ignoring_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}
