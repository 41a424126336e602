//! Text out of real documents: the committed fixtures rendered from one eval article by
//! pandoc (HTML, DOCX) and LibreOffice (PDF) — scripts/make-document-fixtures — against
//! the article's text, then a PDF through ingest to page-cited search hits.

mod common;

use std::path::PathBuf;

use pith_core::extract::{self, Extracted, Format};
use pith_core::{Error, Method, SearchOptions};

use common::{TempDb, engine};

fn document(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/documents")
        .join(name)
}

fn source_text() -> String {
    std::fs::read_to_string(document("aardvark.txt")).unwrap()
}

fn extracted(name: &str) -> Extracted {
    extract::extract_file(&document(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// 1 - (edit distance / longer length), over the texts with whitespace runs as one
/// space: 1.0 for the same text.
fn similarity(a: &str, b: &str) -> f64 {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (a, b): (Vec<char>, Vec<char>) = (norm(a).chars().collect(), norm(b).chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    1.0 - row[b.len()] as f64 / a.len().max(b.len()).max(1) as f64
}

fn headings(doc: &Extracted) -> Vec<&str> {
    doc.layout
        .headings
        .iter()
        .map(|(_, h)| h.as_str())
        .collect()
}

#[test]
fn similarity_tells_texts_apart() {
    assert_eq!(similarity("a  b\nc", "a b c"), 1.0);
    assert!(similarity(&source_text(), "The aardvark") < 0.1);
}

#[test]
fn every_format_gives_back_the_articles_text_and_headings() {
    let source = source_text();
    for name in ["aardvark.html", "aardvark.docx", "aardvark.pdf"] {
        let doc = extracted(name);
        let score = similarity(&source, &doc.text);
        assert!(score >= 0.98, "{name}: similarity {score:.4}");
        assert_eq!(
            headings(&doc),
            ["Aardvark", "Description", "Behaviour", "Range"],
            "{name}"
        );
        for (start, heading) in &doc.layout.headings {
            assert!(
                doc.text[*start..].starts_with(heading.as_str()),
                "{name}: {heading}"
            );
        }
    }
}

#[test]
fn html_leaves_out_navigation_scripts_and_footers() {
    let doc = extracted("aardvark.html");
    for noise in ["Home", "tracker", "Copyright"] {
        assert!(!doc.text.contains(noise), "{noise} in the text");
    }
}

#[test]
fn pdf_pages_start_in_order_at_their_text() {
    let doc = extracted("aardvark.pdf");
    assert_eq!(
        doc.layout.pages.len(),
        3,
        "LibreOffice laid the article out on 3 pages"
    );
    assert_eq!(doc.layout.pages[0], 0);
    assert!(doc.layout.pages.windows(2).all(|w| w[0] < w[1]));
    let (text, layout) = (doc.text, doc.layout);
    assert_eq!(layout.page_at(0), Some(1));
    assert_eq!(layout.page_at(text.len() - 1), Some(3));
}

#[test]
fn the_format_comes_from_the_content_not_the_name() {
    let pdf = std::fs::read(document("aardvark.pdf")).unwrap();
    assert_eq!(Format::sniff("notes.txt", &pdf), Format::Pdf);
    let docx = std::fs::read(document("aardvark.docx")).unwrap();
    assert_eq!(Format::sniff("report.pdf", &docx), Format::Docx);
    let html = std::fs::read(document("aardvark.html")).unwrap();
    assert_eq!(Format::sniff("page.txt", &html), Format::Html);
    assert_eq!(
        Format::sniff("notes.md", b"# Title\n\ntext"),
        Format::Markdown
    );
    assert_eq!(Format::sniff("notes", b"plain text"), Format::Text);
}

#[test]
fn markdown_headings_mark_sections() {
    let text = "# Guide\n\nIntro.\n\n```\n# not a heading\n```\n\n## Setup ##\n\nSteps.\n";
    let doc = extract::extract("guide.md", text.as_bytes()).unwrap();
    assert_eq!(headings(&doc), ["Guide", "Setup"]);
    let (text, layout) = (doc.text, doc.layout);
    assert_eq!(
        layout.heading_at(text.find("Steps").unwrap()),
        Some("Setup")
    );
    assert_eq!(
        layout.heading_at(text.find("Intro").unwrap()),
        Some("Guide")
    );
    // A passage that starts with a heading's line belongs to its section.
    assert_eq!(layout.heading_at(0), Some("Guide"));
    assert_eq!(
        layout.heading_at(text.find("## Setup").unwrap()),
        Some("Setup")
    );
    assert_eq!(layout.page_at(0), None);
}

#[test]
fn an_encrypted_pdf_is_a_clear_error() {
    let err = extract::extract_file(&document("aardvark-encrypted.pdf")).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(err.to_string().contains("encrypted"), "{err}");
}

#[test]
fn truncated_and_corrupted_documents_fail_cleanly() {
    for name in ["aardvark.docx", "aardvark.pdf", "aardvark.html"] {
        let bytes = std::fs::read(document(name)).unwrap();
        for cut in [bytes.len() / 2, bytes.len() / 10, 200] {
            // HTML has no broken form: a cut page is a shorter page.
            let _ = extract::extract(name, &bytes[..cut]);
        }
        let mut flipped = bytes.clone();
        for i in (0..flipped.len()).step_by(97) {
            flipped[i] ^= 0x55;
        }
        let _ = extract::extract(name, &flipped);
    }
    let half = std::fs::read(document("aardvark.docx")).unwrap();
    let err = extract::extract("a.docx", &half[..half.len() / 2]).unwrap_err();
    assert!(
        err.to_string().contains("cannot read this DOCX file"),
        "{err}"
    );
}

#[test]
fn a_docx_zip_bomb_is_refused() {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    zip.start_file("word/document.xml", deflated).unwrap();
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..100 {
        zip.write_all(&zeros).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    assert!(bytes.len() < 1 << 20, "100 MiB of spaces deflate small");
    let err = extract::extract("bomb.docx", &bytes).unwrap_err();
    assert!(err.to_string().contains("inflates to more than"), "{err}");
}

#[test]
fn deeply_nested_html_is_refused_quickly() {
    let page = format!(
        "<html><body>{}text{}",
        "<div>".repeat(100_000),
        "</div>".repeat(100_000)
    );
    let started = std::time::Instant::now();
    let err = extract::extract("deep.html", page.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("nested"), "{err}");
    assert!(
        started.elapsed().as_secs() < 5,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn an_ingested_pdf_cites_its_pages_and_sections() {
    let db = TempDb::new("extract-pdf");
    let engine = engine(&db);
    let report = engine
        .ingest_file(&document("aardvark.pdf"), "{}", &mut |_, _| {})
        .unwrap();
    assert!(report.passages >= 3, "{report:?}");
    let options = SearchOptions {
        k: 3,
        method: Method::Bm25,
        ..SearchOptions::default()
    };
    let hits = engine.search("termites", &options).unwrap();
    assert!(!hits.is_empty());
    for hit in &hits {
        let page = hit.passage.page.expect("a PDF passage has a page");
        assert!((1..=3).contains(&page), "page {page}");
        assert!(hit.passage.heading.is_some(), "{:?}", hit.passage);
    }
    let text = engine
        .ingest_text(
            "notes.txt",
            "Plain notes without pages.",
            "{}",
            &mut |_, _| {},
        )
        .unwrap();
    let plain = engine.search("notes without pages", &options).unwrap();
    let hit = plain
        .iter()
        .find(|h| h.passage.document_id == text.document_id)
        .unwrap();
    assert_eq!(
        (hit.passage.page, hit.passage.heading.as_deref()),
        (None, None)
    );
}
