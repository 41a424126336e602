//! Text out of documents. One extractor per format behind [`extract`]; the format is
//! found from the content (the extension is only a tie-break for plain text), so a
//! `report.pdf` that is really HTML is read as HTML.
//!
//! Every extractor returns the text with its layout as offsets into it: where each page
//! starts (PDF) and where each heading's section starts (all formats), so a passage's
//! page and nearest heading follow from its char offsets.

mod docx;
mod html;
mod pdf;

use std::path::Path;

use crate::error::{Error, Result};

/// The largest file pith reads. Larger than the largest document's text
/// ([`crate::ingest::MAX_DOCUMENT_BYTES`]): a PDF or DOCX is mostly images and fonts.
pub const MAX_FILE_BYTES: u64 = 512 << 20;

/// A document's text and where its pages and sections start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extracted {
    pub text: String,
    pub layout: Layout,
}

/// Where a text's pages and sections start, as byte offsets into it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    /// Where page 1, 2, ... start; empty for formats without pages.
    pub pages: Vec<usize>,
    /// Where each heading's section starts, with the heading, ascending.
    pub headings: Vec<(usize, String)>,
}

impl Layout {
    /// The 1-based page holding byte `at`, for paged formats.
    pub fn page_at(&self, at: usize) -> Option<u32> {
        let n = self.pages.partition_point(|&start| start <= at);
        (n > 0).then_some(n as u32)
    }

    /// The heading of the section holding byte `at`.
    pub fn heading_at(&self, at: usize) -> Option<&str> {
        let n = self.headings.partition_point(|(start, _)| *start <= at);
        n.checked_sub(1).map(|i| self.headings[i].1.as_str())
    }
}

/// The file extensions of the formats pith reads, for picking documents out of a
/// folder; the format itself is found from the content.
pub const EXTENSIONS: &[&str] = &[
    "txt", "text", "md", "markdown", "rst", "html", "htm", "xhtml", "docx", "pdf",
];

/// Whether `path`'s extension is one of [`EXTENSIONS`].
pub fn has_document_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The formats pith reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Html,
    Docx,
    Pdf,
}

impl Format {
    /// The format of `bytes`, from their content; `name`'s extension only tells Markdown
    /// from plain text.
    pub fn sniff(name: &str, bytes: &[u8]) -> Format {
        let head = &bytes[..bytes.len().min(1024)];
        if find(head, b"%PDF-").is_some() {
            return Format::Pdf;
        }
        if bytes.starts_with(b"PK\x03\x04") && docx::is_docx(bytes) {
            return Format::Docx;
        }
        if looks_like_html(head) {
            return Format::Html;
        }
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".md") || lower.ends_with(".markdown") {
            Format::Markdown
        } else {
            Format::Text
        }
    }
}

/// The text and layout of the document in the file at `path`.
pub fn extract_file(path: &Path) -> Result<Extracted> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(Error::InvalidArgument(format!(
            "{} is {} MiB; pith reads files of up to {} MiB",
            path.display(),
            len >> 20,
            MAX_FILE_BYTES >> 20
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    extract(&path.to_string_lossy(), &bytes)
}

/// The text and layout of the document `name` whose bytes are `bytes`.
pub fn extract(name: &str, bytes: &[u8]) -> Result<Extracted> {
    extract_as(Format::sniff(name, bytes), name, bytes)
}

/// As [`extract`], reading `bytes` as `format` whatever they look like.
pub fn extract_as(format: Format, name: &str, bytes: &[u8]) -> Result<Extracted> {
    let extracted = match format {
        Format::Text => Extracted {
            text: utf8(name, bytes)?,
            ..Extracted::default()
        },
        Format::Markdown => markdown(utf8(name, bytes)?),
        Format::Html => html::extract(&String::from_utf8_lossy(bytes))
            .map_err(|e| unreadable(name, "HTML", e))?,
        Format::Docx => docx::extract(bytes).map_err(|e| unreadable(name, "DOCX", e))?,
        Format::Pdf => pdf::extract(bytes).map_err(|e| unreadable(name, "PDF", e))?,
    };
    // An empty text file is the caller's to report; an empty PDF is a scan.
    if format == Format::Pdf && extracted.text.trim().is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{name}: no extractable text (a scanned PDF has no text layer: run OCR on it first)"
        )));
    }
    Ok(extracted)
}

fn unreadable(name: &str, format: &str, reason: String) -> Error {
    Error::InvalidArgument(format!("{name}: cannot read this {format} file: {reason}"))
}

/// Plain text must be UTF-8 and not a binary file.
fn utf8(name: &str, bytes: &[u8]) -> Result<String> {
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return Err(Error::InvalidArgument(format!("{name} is a binary file")));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        Error::InvalidArgument(format!(
            "{name} is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Markdown keeps its text as written; its ATX headings (`# Title`) mark sections, from
/// the heading's line on.
fn markdown(text: String) -> Extracted {
    let mut headings = Vec::new();
    let mut at = 0;
    let mut fenced = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
        } else if !fenced {
            let hashes = trimmed.bytes().take_while(|&b| b == b'#').count();
            let rest = &trimmed[hashes..];
            if (1..=6).contains(&hashes) && (rest.starts_with(' ') || rest.trim().is_empty()) {
                let title = rest.trim().trim_end_matches('#').trim();
                // The section starts at the `#`, where a passage holding the heading starts.
                if !title.is_empty() {
                    headings.push((at, title.to_string()));
                }
            }
        }
        at += line.len();
    }
    Extracted {
        text,
        layout: Layout {
            pages: Vec::new(),
            headings,
        },
    }
}

fn looks_like_html(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let start = text.trim_start_matches('\u{feff}').trim_start();
    let opens = ["<!doctype html", "<html", "<head", "<body"];
    opens.iter().any(|tag| start.starts_with(tag))
        || (start.starts_with("<!--") || start.starts_with("<?xml"))
            && opens.iter().any(|tag| start.contains(tag))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
