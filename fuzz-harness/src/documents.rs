//! Documents from hostile bytes, one target per extractor: each input is read as that
//! format whatever it looks like, and either fails with an error or gives a layout that
//! points into its text.

use pith_core::extract::{self, Extracted, Format};

pub fn pdf(data: &[u8]) {
    run(Format::Pdf, data);
}

pub fn docx(data: &[u8]) {
    run(Format::Docx, data);
}

pub fn html(data: &[u8]) {
    run(Format::Html, data);
}

fn run(format: Format, data: &[u8]) {
    if let Ok(doc) = extract::extract_as(format, "fuzz", data) {
        check_layout(&doc);
    }
}

/// Pages and headings start in order, on character boundaries of the text, and each
/// heading's text is where it says.
fn check_layout(doc: &Extracted) {
    let text = &doc.text;
    assert!(
        doc.layout.pages.windows(2).all(|w| w[0] <= w[1]),
        "pages out of order"
    );
    for &start in &doc.layout.pages {
        assert!(
            text.is_char_boundary(start),
            "page start {start} inside a character"
        );
    }
    let starts: Vec<usize> = doc
        .layout
        .headings
        .iter()
        .map(|(start, _)| *start)
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "headings out of order"
    );
    for (start, heading) in &doc.layout.headings {
        assert!(
            text.is_char_boundary(*start),
            "heading start {start} inside a character"
        );
        assert!(
            text[*start..].starts_with(heading.as_str()),
            "heading {heading:?} not at {start}"
        );
    }
}
