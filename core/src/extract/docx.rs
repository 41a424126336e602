//! DOCX: the paragraphs of `word/document.xml` in order, headings from the paragraph
//! styles (`styles.xml`), tables as one line per row with cells separated by ` | `.
//!
//! A DOCX is a zip: every read is capped, so a zip bomb (a small file that inflates to
//! gigabytes) fails cleanly instead of filling memory.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use zip::ZipArchive;

use super::Extracted;

/// The most a part of the document may inflate to.
const MAX_PART_BYTES: u64 = 64 << 20;
/// More entries than any real document has; a larger directory is hostile.
const MAX_ENTRIES: usize = 10_000;

pub(super) fn extract(bytes: &[u8]) -> Result<Extracted, String> {
    let mut zip =
        ZipArchive::new(Cursor::new(bytes)).map_err(|e| format!("not a valid zip: {e}"))?;
    if zip.len() > MAX_ENTRIES {
        return Err(format!("{} zip entries (at most {MAX_ENTRIES})", zip.len()));
    }
    let document = part(&mut zip, "word/document.xml")?.ok_or("no word/document.xml")?;
    let levels = match part(&mut zip, "word/styles.xml")? {
        Some(styles) => heading_styles(&styles)?,
        None => HashMap::new(),
    };
    body(&document, &levels)
}

/// Whether the zip in `bytes` holds a Word document, by its directory; a zip too broken
/// to have one is taken for a DOCX when the part's name is in it anywhere, so that its
/// error says what is wrong with it.
pub(super) fn is_docx(bytes: &[u8]) -> bool {
    match ZipArchive::new(Cursor::new(bytes)) {
        Ok(zip) => zip.index_for_name("word/document.xml").is_some(),
        Err(_) => super::find(bytes, b"word/document.xml").is_some(),
    }
}

/// The text of one part of the archive; `None` when it is absent.
fn part(zip: &mut ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<Option<String>, String> {
    let file = match zip.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format!("{name}: {e}")),
    };
    if file.size() > MAX_PART_BYTES {
        return Err(too_large(name));
    }
    // The declared size can lie: the cap is on what is actually inflated.
    let mut text = String::new();
    file.take(MAX_PART_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{name}: {e}"))?;
    if text.len() as u64 > MAX_PART_BYTES {
        return Err(too_large(name));
    }
    Ok(Some(text))
}

fn too_large(name: &str) -> String {
    format!("{name} inflates to more than {} MiB", MAX_PART_BYTES >> 20)
}

/// The heading level of each paragraph style that is a heading: by its name
/// ("heading 1", the same in every UI language) or by its outline level.
fn heading_styles(xml: &str) -> Result<HashMap<String, u8>, String> {
    let mut levels = HashMap::new();
    let mut reader = Reader::from_str(xml);
    let mut style: Option<String> = None;
    loop {
        match reader
            .read_event()
            .map_err(|e| xml_error("styles.xml", &reader, e))?
        {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "style" => style = attribute(&e, "styleId"),
                "name" | "outlineLvl" => {
                    let level = attribute(&e, "val").and_then(|v| match e.local_name().as_ref() {
                        "name" => v
                            .to_ascii_lowercase()
                            .strip_prefix("heading ")?
                            .parse()
                            .ok(),
                        _ => v.parse::<u8>().ok().map(|l| l + 1),
                    });
                    if let (Some(id), Some(level)) = (&style, level) {
                        levels.insert(id.clone(), level);
                    }
                }
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == "style" => style = None,
            Event::Eof => return Ok(levels),
            _ => {}
        }
    }
}

/// Walks the body: text runs into paragraphs, paragraphs into the text.
fn body(xml: &str, levels: &HashMap<String, u8>) -> Result<Extracted, String> {
    let mut out = Writer::default();
    let mut reader = Reader::from_str(xml);
    let mut in_text = false;
    // Inside mc:Fallback: the same content again, for older readers.
    let mut fallback = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| xml_error("document.xml", &reader, e))?;
        match event {
            Event::Start(e) if fallback > 0 || e.local_name().as_ref() == "Fallback" => {
                fallback += 1
            }
            Event::End(_) if fallback > 0 => fallback -= 1,
            _ if fallback > 0 => {}
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "t" => in_text = true,
                "tab" => out.paragraph.push('\t'),
                "br" | "cr" => out.paragraph.push('\n'),
                "pStyle" => {
                    out.level = attribute(&e, "val").and_then(|id| levels.get(&id).copied())
                }
                "outlineLvl" => {
                    out.level = attribute(&e, "val")
                        .and_then(|v| v.parse::<u8>().ok())
                        .map(|l| l + 1)
                }
                "tbl" => out.start_table(),
                "tc" if out.tables == 1 => out.cells.push(String::new()),
                _ => {}
            },
            Event::Text(t) if in_text => out.paragraph.push_str(&t),
            Event::GeneralRef(r) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.paragraph.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&r) {
                    out.paragraph.push_str(s);
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => out.end_paragraph(),
                "tr" => out.end_row(),
                "tbl" => out.end_table(),
                _ => {}
            },
            Event::Eof => return Ok(out.finish()),
            _ => {}
        }
    }
}

/// Builds the text: paragraphs separated by blank lines, table rows on lines of their
/// own.
#[derive(Default)]
struct Writer {
    done: Extracted,
    paragraph: String,
    /// The heading level of the paragraph being read.
    level: Option<u8>,
    tables: usize,
    /// The cells of the table row being read.
    cells: Vec<String>,
}

impl Writer {
    fn end_paragraph(&mut self) {
        let text = std::mem::take(&mut self.paragraph);
        let level = self.level.take();
        if self.tables > 0 {
            if let Some(cell) = self.cells.last_mut() {
                join(cell, " ", text.trim());
            }
            return;
        }
        if text.trim().is_empty() {
            return;
        }
        self.separate("\n\n");
        if level.is_some() {
            self.done
                .layout
                .headings
                .push((self.done.text.len(), text.trim().to_string()));
        }
        self.done.text.push_str(text.trim());
    }

    fn start_table(&mut self) {
        if self.tables == 0 {
            self.separate("\n\n");
        }
        self.tables += 1;
    }

    fn end_row(&mut self) {
        // A nested table's rows land in the enclosing cell.
        if self.tables > 1 {
            return;
        }
        let cells = std::mem::take(&mut self.cells);
        let row: Vec<&str> = cells
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .collect();
        if row.is_empty() {
            return;
        }
        self.separate("\n");
        self.done.text.push_str(&row.join(" | "));
    }

    fn end_table(&mut self) {
        self.tables = self.tables.saturating_sub(1);
        if self.tables == 0 {
            self.separate("\n\n");
        }
    }

    fn separate(&mut self, gap: &str) {
        let text = &mut self.done.text;
        if !text.is_empty() && !text.ends_with(gap) {
            text.truncate(text.trim_end_matches('\n').len());
            text.push_str(gap);
        }
    }

    fn finish(mut self) -> Extracted {
        let end = self.done.text.trim_end().len();
        self.done.text.truncate(end);
        self.done
    }
}

fn join(into: &mut String, gap: &str, text: &str) {
    if !into.is_empty() && !text.is_empty() {
        into.push_str(gap);
    }
    into.push_str(text);
}

/// An attribute by its local name (`w:val` and `val` alike).
fn attribute(e: &BytesStart, local: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

fn xml_error(part: &str, reader: &Reader<&[u8]>, e: quick_xml::Error) -> String {
    format!(
        "{part}: malformed XML at byte {}: {e}",
        reader.buffer_position()
    )
}
