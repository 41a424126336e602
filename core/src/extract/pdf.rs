//! PDF: the text layer, page by page, in the order it is drawn. Lines and paragraphs
//! are rebuilt from where each piece of text lands: a new line where the baseline moves,
//! a blank line where the gap between two lines is clearly wider than the line spacing,
//! and a space where two pieces of one line lie further apart than letters do.
//!
//! Lines repeated at the top or bottom of most pages (running headers, footers, page
//! numbers) are dropped; `pages` records where each page starts instead. A short
//! paragraph set clearly larger than the body text is a heading.
//!
//! The input is untrusted: pages, inflated bytes and nesting are capped, and the only
//! recursion here, into forms drawn inside forms, is bounded by depth.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Encoding, Object, ObjectId, Stream};

use super::Extracted;

/// More pages than any document worth indexing has.
const MAX_PAGES: usize = 10_000;
/// The most one page's content or one form may inflate to.
const MAX_STREAM_BYTES: usize = 64 << 20;
/// The most all the content of a document may inflate to, so that a small file cannot
/// keep the reader busy for hours inflating the same bomb page after page.
const MAX_CONTENT_BYTES: usize = 1 << 30;
/// The most a font's ToUnicode CMap may inflate to; the largest real ones (CJK) are
/// well under a megabyte.
const MAX_CMAP_BYTES: usize = 4 << 20;
/// Forms drawn inside forms: deeper than real documents nest them.
const MAX_FORM_DEPTH: usize = 4;
/// Saved graphics states: real streams nest a handful, a hostile one millions.
const MAX_SAVED_STATES: usize = 256;
/// A gap wider than this many ems between two pieces of one line is a space: kerning
/// and letter spacing stay well under it, word spaces above.
const SPACE_EM: f32 = 0.15;
/// How much larger than the body text a heading is set.
const HEADING_SCALE: f32 = 1.15;
/// The most words a heading has.
const HEADING_WORDS: usize = 12;
/// How much wider than the line spacing a gap between lines must be to end a paragraph.
const PARAGRAPH_GAP: f32 = 1.3;
/// Lines looked at, at each of the top and the bottom of a page, for running headers
/// and footers.
const BAND_LINES: usize = 3;

pub(super) fn extract(bytes: &[u8]) -> Result<Extracted, String> {
    let doc = Document::load_mem(bytes).map_err(|e| e.to_string())?;
    // lopdf opens a file whose user password is empty; one still encrypted needs a password.
    if doc.is_encrypted() {
        return Err("encrypted (password-protected)".into());
    }
    let page_ids: Vec<ObjectId> = doc.page_iter().take(MAX_PAGES + 1).collect();
    if page_ids.len() > MAX_PAGES {
        return Err(format!("more than {MAX_PAGES} pages"));
    }
    if page_ids.is_empty() {
        return Err("no pages".into());
    }
    let mut reader = Reader::new(&doc);
    let mut pages = page_ids
        .into_iter()
        .map(|id| reader.page(id))
        .collect::<Result<Vec<_>, _>>()?;
    drop_running_lines(&mut pages);
    Ok(assemble(&pages))
}

/// One line of a page: the height of its baseline, its largest font size, its text.
struct Line {
    y: f32,
    size: f32,
    text: String,
}

/// A piece of text as drawn: where it starts and ends, its font size, its text.
struct Run {
    x: f32,
    end_x: f32,
    y: f32,
    size: f32,
    text: String,
}

/// Reads the text of pages, one at a time, keeping only what outlives a page: the
/// parsed fonts (pages share them) and what is left of the inflation budget.
struct Reader<'a> {
    doc: &'a Document,
    fonts: HashMap<ObjectId, Rc<Font<'a>>>,
    budget: usize,
    lines: LineBuilder,
}

impl<'a> Reader<'a> {
    fn new(doc: &'a Document) -> Self {
        Reader {
            doc,
            fonts: HashMap::new(),
            budget: MAX_CONTENT_BYTES,
            lines: LineBuilder::default(),
        }
    }

    fn page(&mut self, page: ObjectId) -> Result<Vec<Line>, String> {
        let doc = self.doc;
        let content = self.inflate(|limit| doc.get_page_content_with_limit(page, limit))?;
        let resources = Resources::of_page(self.doc, page);
        self.run(&content, &resources, Matrix::IDENTITY, 0)?;
        Ok(std::mem::take(&mut self.lines).finish())
    }

    /// Inflates a content stream by `read`, within what is left of the document's budget.
    fn inflate(
        &mut self,
        read: impl FnOnce(usize) -> lopdf::Result<Vec<u8>>,
    ) -> Result<Vec<u8>, String> {
        let content = read(self.budget.min(MAX_STREAM_BYTES)).map_err(too_large)?;
        self.budget -= content.len().min(self.budget);
        Ok(content)
    }

    /// Interprets one content stream (a page's or a form's), passing the text it draws
    /// to the line builder. A stream that breaks off keeps the text before the break.
    fn run(
        &mut self,
        content: &[u8],
        resources: &Resources<'a>,
        ctm: Matrix,
        depth: usize,
    ) -> Result<(), String> {
        let fonts = self.fonts_of(resources);
        let mut scope = Scope::new(&fonts, ctm);
        for op in Content::decode_iter(content).map_while(Result::ok) {
            let args = op.operands.as_slice();
            let state = &mut scope.state;
            match op.operator.as_str() {
                "q" if scope.saved.len() < MAX_SAVED_STATES => scope.saved.push(*state),
                "Q" => *state = scope.saved.pop().unwrap_or(*state),
                "cm" => state.ctm = Matrix::from_operands(args).then(state.ctm),
                "Do" if depth < MAX_FORM_DEPTH => self.form(args, resources, state.ctm, depth)?,
                "BMC" | "BDC" => scope.marked.open(args.get(1)),
                "EMC" => {
                    if let Some(run) = scope.marked.close() {
                        self.lines.push(run);
                    }
                }
                operator => self.text_op(operator, args, &mut scope),
            }
        }
        Ok(())
    }

    /// The operators that set text state, move the pen and show text (PDF 32000-1 §9.3,
    /// §9.4).
    fn text_op(&mut self, operator: &str, args: &[Object], scope: &mut Scope<'_, 'a>) {
        let arg = |i: usize| args.get(i).map_or(0.0, number);
        let (state, pen) = (&mut scope.state, &mut scope.pen);
        match operator {
            "BT" => *pen = Pen::default(),
            "Tf" => {
                let font = args.first().and_then(|name| name.as_name().ok());
                state.font = font.and_then(|name| scope.fonts.get(name)).map(Rc::as_ref);
                state.size = arg(1);
            }
            "Tc" => state.char_spacing = arg(0),
            "Tw" => state.word_spacing = arg(0),
            "Tz" => state.h_scale = arg(0) / 100.0,
            "TL" => state.leading = arg(0),
            "Td" => pen.next_line(arg(0), arg(1)),
            "TD" => {
                state.leading = -arg(1);
                pen.next_line(arg(0), arg(1));
            }
            "Tm" => *pen = Pen::at(Matrix::from_operands(args)),
            "T*" => pen.next_line(0.0, -state.leading),
            "Tj" => self.show(args.first(), scope),
            "'" => {
                pen.next_line(0.0, -state.leading);
                self.show(args.first(), scope);
            }
            "\"" => {
                state.word_spacing = arg(0);
                state.char_spacing = arg(1);
                pen.next_line(0.0, -state.leading);
                self.show(args.get(2), scope);
            }
            "TJ" => {
                let items = args.first().and_then(|a| a.as_array().ok());
                for item in items.into_iter().flatten() {
                    match item {
                        Object::String(..) => self.show(Some(item), scope),
                        // A number moves the pen back by thousandths of an em; a large
                        // negative one is how some generators write a word space.
                        n => {
                            let state = &scope.state;
                            scope
                                .pen
                                .advance(-number(n) / 1000.0 * state.size * state.h_scale);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Draws one string in the current font: decodes it and moves the pen past it.
    fn show(&mut self, string: Option<&Object>, scope: &mut Scope<'_, '_>) {
        let (state, pen) = (&scope.state, &mut scope.pen);
        let (Some(font), Some(Ok(bytes))) = (state.font, string.map(Object::as_str)) else {
            return;
        };
        let start = pen.tm.then(state.ctm);
        pen.advance(font.advance(bytes, state));
        let end = pen.tm.then(state.ctm);
        let run = Run {
            x: start.0[4],
            end_x: end.0[4],
            y: start.0[5],
            size: (state.size * start.vertical_scale()).abs(),
            text: font.decode(bytes),
        };
        match &mut scope.marked.actual {
            Some(actual) => actual.cover(run),
            None => self.lines.push(run),
        }
    }

    /// The text of a form XObject, drawn where the form is placed. Other XObjects
    /// (images) have none.
    fn form(
        &mut self,
        args: &[Object],
        resources: &Resources<'a>,
        ctm: Matrix,
        depth: usize,
    ) -> Result<(), String> {
        let name = args.first().and_then(|name| name.as_name().ok());
        let Some(form) = name.and_then(|name| resources.form(self.doc, name)) else {
            return Ok(());
        };
        let content = self.inflate(|limit| form.get_plain_content_with_limit(limit))?;
        let matrix = form.dict.get(b"Matrix").and_then(Object::as_array);
        let ctm = matrix
            .map_or(Matrix::IDENTITY, |m| Matrix::from_operands(m))
            .then(ctm);
        // Old files leave a form's resources out to mean its page's.
        let own = form.dict.get_deref(b"Resources", self.doc);
        let resources = match own.and_then(Object::as_dict) {
            Ok(own) => Resources(vec![own]),
            Err(_) => resources.clone(),
        };
        self.run(&content, &resources, ctm, depth + 1)
    }

    /// The fonts in scope by name, each parsed once per document.
    fn fonts_of(&mut self, resources: &Resources<'a>) -> Fonts<'a> {
        let doc = self.doc;
        let mut fonts = HashMap::new();
        for (name, font) in resources.entries(doc, b"Font") {
            // Nearer resources come first and win.
            if fonts.contains_key(name) {
                continue;
            }
            if let Some(font) = self.font(font) {
                fonts.insert(name, font);
            }
        }
        fonts
    }

    fn font(&mut self, object: &'a Object) -> Option<Rc<Font<'a>>> {
        let doc = self.doc;
        let Object::Reference(id) = object else {
            return object
                .as_dict()
                .ok()
                .map(|dict| Rc::new(Font::new(doc, dict)));
        };
        let dict = doc.get_dictionary(*id).ok()?;
        let font = self
            .fonts
            .entry(*id)
            .or_insert_with(|| Rc::new(Font::new(doc, dict)));
        Some(Rc::clone(font))
    }
}

fn too_large(_: lopdf::Error) -> String {
    "page content inflates past the size limit (a decompression bomb?)".into()
}

/// The resource dictionaries in scope, nearest first.
#[derive(Clone)]
struct Resources<'a>(Vec<&'a Dictionary>);

impl<'a> Resources<'a> {
    fn of_page(doc: &'a Document, page: ObjectId) -> Self {
        let Ok((inline, referenced)) = doc.get_page_resources(page) else {
            return Resources(Vec::new());
        };
        let referenced = referenced
            .into_iter()
            .filter_map(|id| doc.get_dictionary(id).ok());
        Resources(inline.into_iter().chain(referenced).collect())
    }

    /// The named entries of one category (`/Font`), nearest first.
    fn entries(
        &self,
        doc: &'a Document,
        category: &'static [u8],
    ) -> impl Iterator<Item = (&'a [u8], &'a Object)> {
        self.0
            .iter()
            .filter_map(move |dict| dict.get_deref(category, doc).and_then(Object::as_dict).ok())
            .flat_map(|entries| entries.iter().map(|(name, value)| (name.as_slice(), value)))
    }

    fn form(&self, doc: &'a Document, name: &[u8]) -> Option<&'a Stream> {
        let stream = self.0.iter().find_map(|dict| {
            let xobjects = dict.get_deref(b"XObject", doc).and_then(Object::as_dict);
            xobjects
                .and_then(|x| x.get_deref(name, doc))
                .and_then(Object::as_stream)
                .ok()
        })?;
        (name_of(&stream.dict, b"Subtype") == Some(b"Form")).then_some(stream)
    }
}

/// The fonts in scope, by the names the content stream gives them.
type Fonts<'a> = HashMap<&'a [u8], Rc<Font<'a>>>;

/// What reading text in one font takes: how its bytes map to Unicode, and how wide each
/// glyph is, to know where the text ends.
struct Font<'a> {
    encoding: Encoding<'a>,
    /// Composite (Type0) fonts use two-byte codes, simple fonts one-byte codes.
    two_byte: bool,
    /// Glyph widths as (first code, last code, width), sorted.
    widths: Vec<(u32, u32, f32)>,
    default_width: f32,
    /// Text-space units per glyph unit: 1/1000, except in Type3 fonts, whose
    /// /FontMatrix says.
    units: f32,
}

impl<'a> Font<'a> {
    fn new(doc: &'a Document, dict: &'a Dictionary) -> Self {
        let two_byte = name_of(dict, b"Subtype") == Some(b"Type0");
        let (widths, default_width) = if two_byte {
            cid_widths(doc, dict)
        } else {
            simple_widths(doc, dict)
        };
        let font_matrix = dict.get(b"FontMatrix").and_then(Object::as_array);
        let units = font_matrix
            .ok()
            .and_then(|m| m.first())
            .map_or(0.001, number);
        Font {
            encoding: encoding(doc, dict),
            two_byte,
            widths,
            default_width,
            units,
        }
    }

    fn decode(&self, bytes: &[u8]) -> String {
        // lopdf knows no other encodings by name; Latin-1 at least gets ASCII right.
        let text = self
            .encoding
            .bytes_to_string(bytes)
            .unwrap_or_else(|_| bytes.iter().map(|&b| char::from(b)).collect());
        text.chars()
            .map(|c| if c.is_whitespace() { ' ' } else { c })
            .filter(|c| !c.is_control())
            .collect()
    }

    /// How far drawing `bytes` moves the pen, in text space (PDF 32000-1 §9.4.4).
    fn advance(&self, bytes: &[u8], state: &State<'_, '_>) -> f32 {
        let code_len = if self.two_byte { 2 } else { 1 };
        let width: f32 = bytes
            .chunks(code_len)
            .map(|code| {
                let glyph = self.width(code.iter().fold(0, |acc, &b| acc << 8 | u32::from(b)));
                // Word spacing applies to the single-byte code 32 only.
                let word = if code == b" " {
                    state.word_spacing
                } else {
                    0.0
                };
                glyph * self.units * state.size + state.char_spacing + word
            })
            .sum();
        width * state.h_scale
    }

    fn width(&self, code: u32) -> f32 {
        let i = self.widths.partition_point(|&(_, last, _)| last < code);
        match self.widths.get(i) {
            Some(&(first, _, width)) if first <= code => width,
            _ => self.default_width,
        }
    }
}

/// The font's map to Unicode: its ToUnicode CMap when it has one (the file's own word
/// on what each glyph means), else its encoding.
fn encoding<'a>(doc: &'a Document, font: &'a Dictionary) -> Encoding<'a> {
    to_unicode(doc, font)
        .or_else(|| font.get_font_encoding_with_limit(doc, MAX_CMAP_BYTES).ok())
        .unwrap_or(Encoding::SimpleEncoding(b"WinAnsiEncoding"))
}

/// lopdf reads a font's ToUnicode CMap only when the font has no /Encoding (or an
/// Identity one), so the CMap is read from a copy without it.
fn to_unicode(doc: &Document, font: &Dictionary) -> Option<Encoding<'static>> {
    if !font.has(b"ToUnicode") {
        return None;
    }
    let mut copy = font.clone();
    copy.remove(b"Encoding");
    copy.set("Type", Object::Name(b"Font".to_vec()));
    match copy.get_font_encoding_with_limit(doc, MAX_CMAP_BYTES) {
        Ok(Encoding::UnicodeMapEncoding(cmap)) => Some(Encoding::UnicodeMapEncoding(cmap)),
        _ => None,
    }
}

/// A simple font's /Widths, from /FirstChar on, and the width of the glyphs it leaves
/// out.
fn simple_widths(doc: &Document, font: &Dictionary) -> (Vec<(u32, u32, f32)>, f32) {
    let first = font.get(b"FirstChar").and_then(Object::as_i64).ok();
    let first = first
        .and_then(|f| u32::try_from(f).ok())
        .filter(|&f| f <= 255);
    let listed = font.get_deref(b"Widths", doc).and_then(Object::as_array);
    let widths = match (first, listed) {
        (Some(first), Ok(listed)) => listed
            .iter()
            .zip(first..)
            .map(|(width, code)| (code, code, number(deref(doc, width))))
            .collect(),
        _ => Vec::new(),
    };
    let descriptor = font
        .get_deref(b"FontDescriptor", doc)
        .and_then(Object::as_dict);
    let missing = descriptor
        .and_then(|d| d.get(b"MissingWidth"))
        .map_or(0.0, number);
    // The standard 14 fonts come without widths; an average glyph is about half an em.
    (widths, if missing > 0.0 { missing } else { 500.0 })
}

/// A composite font's widths: its descendant font's /W array, whose items read either
/// `first [w1 w2 ...]` or `first last w`, and /DW for the glyphs it leaves out.
fn cid_widths(doc: &Document, font: &Dictionary) -> (Vec<(u32, u32, f32)>, f32) {
    let descendants = font
        .get_deref(b"DescendantFonts", doc)
        .and_then(Object::as_array);
    let descendant = descendants.ok().and_then(|d| d.first());
    let Some(Ok(cid_font)) = descendant.map(|d| deref(doc, d).as_dict()) else {
        return (Vec::new(), 1000.0);
    };
    let default_width = cid_font.get(b"DW").map_or(1000.0, number);
    let listed = cid_font.get_deref(b"W", doc).and_then(Object::as_array);
    let mut rest = listed.map_or(&[][..], Vec::as_slice);
    let mut widths = Vec::new();
    while let [first, next, tail @ ..] = rest {
        let Some(first) = cid(first) else { break };
        match (deref(doc, next), tail) {
            (Object::Array(each), _) => {
                let codes = first..;
                widths.extend(
                    each.iter()
                        .zip(codes)
                        .map(|(w, code)| (code, code, number(w))),
                );
                rest = tail;
            }
            (last, [width, tail @ ..]) => {
                let Some(last) = cid(last) else { break };
                widths.push((first, last, number(width)));
                rest = tail;
            }
            _ => break,
        }
    }
    widths.sort_by_key(|&(first, _, _)| first);
    (widths, default_width)
}

/// A glyph number of a composite font, at most two bytes.
fn cid(object: &Object) -> Option<u32> {
    let cid = object.as_i64().ok()?;
    u32::try_from(cid).ok().filter(|&cid| cid <= 0xFFFF)
}

fn name_of<'o>(dict: &'o Dictionary, key: &[u8]) -> Option<&'o [u8]> {
    dict.get(key).and_then(Object::as_name).ok()
}

fn deref<'o>(doc: &'o Document, object: &'o Object) -> &'o Object {
    doc.dereference(object).map_or(object, |(_, object)| object)
}

/// A number operand; anything else, or a number too large to be real, reads as 0.
fn number(object: &Object) -> f32 {
    object
        .as_float()
        .ok()
        .filter(|n| n.is_finite())
        .unwrap_or(0.0)
}

/// An affine transform `[a b c d e f]`, taking (x, y) to (ax + cy + e, bx + dy + f).
#[derive(Clone, Copy)]
struct Matrix([f32; 6]);

impl Matrix {
    const IDENTITY: Matrix = Matrix([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    fn translate(x: f32, y: f32) -> Matrix {
        Matrix([1.0, 0.0, 0.0, 1.0, x, y])
    }

    /// The matrix given as six operands; anything else changes nothing.
    fn from_operands(args: &[Object]) -> Matrix {
        match args {
            [a, b, c, d, e, f] => Matrix([a, b, c, d, e, f].map(number)),
            _ => Matrix::IDENTITY,
        }
    }

    /// This transform followed by `next`.
    fn then(self, next: Matrix) -> Matrix {
        let [a, b, c, d, e, f] = self.0;
        let [na, nb, nc, nd, ne, nf] = next.0;
        Matrix([
            a * na + b * nc,
            a * nb + b * nd,
            c * na + d * nc,
            c * nb + d * nd,
            e * na + f * nc + ne,
            e * nb + f * nd + nf,
        ])
    }

    /// How much the transform stretches heights: what a font size becomes on the page.
    fn vertical_scale(self) -> f32 {
        self.0[2].hypot(self.0[3])
    }
}

/// Where interpreting one content stream stands.
struct Scope<'f, 'a> {
    fonts: &'f Fonts<'a>,
    state: State<'f, 'a>,
    saved: Vec<State<'f, 'a>>,
    pen: Pen,
    marked: Marked,
}

impl<'f, 'a> Scope<'f, 'a> {
    fn new(fonts: &'f Fonts<'a>, ctm: Matrix) -> Self {
        Scope {
            fonts,
            state: State::new(ctm),
            saved: Vec::new(),
            pen: Pen::default(),
            marked: Marked::default(),
        }
    }
}

/// Open marked content, and the /ActualText (PDF 32000-1 §14.9.4) that stands for the
/// glyphs drawn inside the outermost one carrying it: generators write it where the
/// glyphs alone cannot say what they mean (a glyph two characters share, say).
#[derive(Default)]
struct Marked {
    depth: usize,
    actual: Option<ActualText>,
}

struct ActualText {
    depth: usize,
    text: String,
    /// Where the glyphs it replaces were drawn.
    run: Option<Run>,
}

impl Marked {
    fn open(&mut self, properties: Option<&Object>) {
        self.depth += 1;
        let properties = properties.and_then(|p| p.as_dict().ok());
        let text = properties.and_then(|p| p.get(b"ActualText").ok());
        if let (None, Some(Ok(text))) = (&self.actual, text.map(lopdf::decode_text_string)) {
            let (depth, run) = (self.depth, None);
            self.actual = Some(ActualText { depth, text, run });
        }
    }

    /// Closes the innermost marked content: the run to draw in its place when it
    /// carried /ActualText and glyphs were drawn inside.
    fn close(&mut self) -> Option<Run> {
        let closing = self.depth;
        self.depth = self.depth.saturating_sub(1);
        if self.actual.as_ref()?.depth != closing {
            return None;
        }
        let ActualText { text, run, .. } = self.actual.take()?;
        run.map(|run| Run { text, ..run })
    }
}

impl ActualText {
    fn cover(&mut self, run: Run) {
        match &mut self.run {
            Some(covered) => covered.end_x = run.end_x,
            None => self.run = Some(run),
        }
    }
}

/// The part of the graphics state that drawing text reads; `q` and `Q` save and
/// restore it.
#[derive(Clone, Copy)]
struct State<'f, 'a> {
    ctm: Matrix,
    font: Option<&'f Font<'a>>,
    size: f32,
    char_spacing: f32,
    word_spacing: f32,
    h_scale: f32,
    leading: f32,
}

impl State<'_, '_> {
    fn new(ctm: Matrix) -> Self {
        State {
            ctm,
            font: None,
            size: 0.0,
            char_spacing: 0.0,
            word_spacing: 0.0,
            h_scale: 1.0,
            leading: 0.0,
        }
    }
}

/// Where the next glyph goes (the text matrix) and where the current line started
/// (the text line matrix).
#[derive(Clone, Copy)]
struct Pen {
    tm: Matrix,
    line_start: Matrix,
}

impl Default for Pen {
    fn default() -> Self {
        Pen::at(Matrix::IDENTITY)
    }
}

impl Pen {
    fn at(matrix: Matrix) -> Self {
        Pen {
            tm: matrix,
            line_start: matrix,
        }
    }

    fn next_line(&mut self, x: f32, y: f32) {
        *self = Pen::at(Matrix::translate(x, y).then(self.line_start));
    }

    fn advance(&mut self, x: f32) {
        self.tm = Matrix::translate(x, 0.0).then(self.tm);
    }
}

/// Gathers runs into lines: a run on the current line's baseline joins it, after a
/// space if it starts well past where the line ended; any other run starts a line.
#[derive(Default)]
struct LineBuilder {
    lines: Vec<Line>,
    end_x: f32,
}

impl LineBuilder {
    fn push(&mut self, run: Run) {
        let gap = run.x - self.end_x;
        self.end_x = run.end_x;
        match self.lines.last_mut() {
            // Half a line's height leaves superscripts and subscripts on their line.
            Some(line) if (run.y - line.y).abs() < 0.5 * line.size.max(run.size) => {
                let spaced = line.text.ends_with(' ') || run.text.starts_with(' ');
                if gap > SPACE_EM * run.size && !spaced {
                    line.text.push(' ');
                }
                line.text.push_str(&run.text);
                line.size = line.size.max(run.size);
            }
            _ if run.text.trim().is_empty() => {}
            _ => self.lines.push(Line {
                y: run.y,
                size: run.size,
                text: run.text,
            }),
        }
    }

    fn finish(mut self) -> Vec<Line> {
        for line in &mut self.lines {
            line.text = line.text.trim().to_string();
        }
        self.lines
    }
}

/// Drops the lines repeated at the same place at the top or bottom of most pages:
/// running headers and footers, and page numbers, with digits masked to match.
fn drop_running_lines(pages: &mut [Vec<Line>]) {
    let needed = (pages.len() * 3).div_ceil(5).max(3);
    let mut counts: HashMap<BandKey, usize> = HashMap::new();
    for lines in pages.iter() {
        let keys: HashSet<BandKey> = band(lines).into_iter().map(|(_, key)| key).collect();
        for key in keys {
            *counts.entry(key).or_default() += 1;
        }
    }
    for lines in pages.iter_mut() {
        let running: HashSet<usize> = band(lines)
            .into_iter()
            .filter(|(_, key)| counts.get(key).is_some_and(|&n| n >= needed))
            .map(|(i, _)| i)
            .collect();
        let mut i = 0;
        lines.retain(|_| {
            i += 1;
            !running.contains(&(i - 1))
        });
    }
}

/// Where a line sits (top or bottom of the page, height in whole points) and its text
/// with digits masked.
type BandKey = (bool, i32, String);

/// The lines nearest the top and the bottom of a page, by index, with their keys.
fn band(lines: &[Line]) -> Vec<(usize, BandKey)> {
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|&a, &b| lines[b].y.total_cmp(&lines[a].y));
    let top = order.iter().take(BAND_LINES).map(|&i| (i, true));
    let bottom = order.iter().rev().take(BAND_LINES).map(|&i| (i, false));
    top.chain(bottom)
        .map(|(i, top)| {
            (
                i,
                (top, lines[i].y.round() as i32, mask_digits(&lines[i].text)),
            )
        })
        .collect()
}

/// The text with each run of digits replaced by `#`, so "Page 3 of 9" matches "Page 10
/// of 12".
fn mask_digits(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    for c in text.chars() {
        if !c.is_ascii_digit() {
            masked.push(c);
        } else if !masked.ends_with('#') {
            masked.push('#');
        }
    }
    masked
}

/// Joins the pages' lines into the document's text, with where each page and heading
/// starts.
fn assemble(pages: &[Vec<Line>]) -> Extracted {
    let body = body_size(pages);
    let spacing = line_spacing(pages, body);
    let mut writer = Writer::default();
    for lines in pages {
        writer.pending_pages += 1;
        let paragraphs =
            lines.chunk_by(|above, below| !paragraph_break(above, below, body, spacing));
        for (i, paragraph) in paragraphs.enumerate() {
            if is_heading(paragraph, body) {
                let title: Vec<&str> = paragraph.iter().map(|line| line.text.as_str()).collect();
                writer.heading(title.join(" "));
                continue;
            }
            for (j, line) in paragraph.iter().enumerate() {
                let gap = match (i, j) {
                    (0, 0) => Gap::Page,
                    (_, 0) => Gap::Paragraph,
                    _ => Gap::Line,
                };
                writer.write(&line.text, gap);
            }
        }
    }
    writer.finish()
}

/// The font size most of the text is set in: the median over characters.
fn body_size(pages: &[Vec<Line>]) -> f32 {
    let mut sizes: Vec<(f32, usize)> = pages
        .iter()
        .flatten()
        .map(|line| (line.size, line.text.chars().count()))
        .collect();
    sizes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = sizes.iter().map(|&(_, chars)| chars).sum::<usize>() / 2;
    let mut seen = 0;
    let median = sizes.into_iter().find(|&(_, chars)| {
        seen += chars;
        seen > half
    });
    median.map_or(0.0, |(size, _)| size)
}

/// The usual distance between the baselines of two lines of body text: the lower
/// quartile, so that the wider gaps between paragraphs do not count.
fn line_spacing(pages: &[Vec<Line>], body: f32) -> f32 {
    let is_body = |line: &Line| (line.size - body).abs() <= 0.1 * body;
    let mut gaps: Vec<f32> = pages
        .iter()
        .flat_map(|lines| lines.windows(2))
        .filter(|pair| is_body(&pair[0]) && is_body(&pair[1]))
        .map(|pair| pair[0].y - pair[1].y)
        .filter(|&gap| gap > 0.5 * body && gap < 4.0 * body)
        .collect();
    gaps.sort_by(f32::total_cmp);
    gaps.get(gaps.len() / 4).copied().unwrap_or(1.2 * body)
}

/// Whether a paragraph ends between two lines of a page: the gap between them is
/// clearly wider than the line spacing, the text jumps up the page, or the font size
/// changes (a heading and its text).
fn paragraph_break(above: &Line, below: &Line, body: f32, spacing: f32) -> bool {
    let (small, large) = (above.size.min(below.size), above.size.max(below.size));
    // Larger type is set on proportionally wider lines.
    let expected = spacing * (large / body).max(1.0);
    let drop = above.y - below.y;
    large > HEADING_SCALE * small || drop > PARAGRAPH_GAP * expected || drop < -expected
}

/// A short paragraph set clearly larger than the body text.
fn is_heading(paragraph: &[Line], body: f32) -> bool {
    let words: usize = paragraph
        .iter()
        .map(|line| line.text.split_whitespace().count())
        .sum();
    body > 0.0
        && paragraph
            .iter()
            .all(|line| line.size >= HEADING_SCALE * body)
        && words <= HEADING_WORDS
        && paragraph
            .iter()
            .any(|line| line.text.chars().any(char::is_alphabetic))
}

/// What separates a line from the text before it.
#[derive(Clone, Copy, PartialEq)]
enum Gap {
    Line,
    Paragraph,
    /// The first line of a page: it goes on the paragraph that the last page ended in,
    /// unless that ended a sentence or was a heading.
    Page,
}

/// The document's text as it is written, line by line.
#[derive(Default)]
struct Writer {
    out: Extracted,
    /// Pages begun whose first line has not been written yet; they start there.
    pending_pages: usize,
    after_heading: bool,
}

impl Writer {
    fn write(&mut self, line: &str, gap: Gap) {
        let text = &mut self.out.text;
        let gap = match gap {
            Gap::Page if self.after_heading || ends_sentence(text) => Gap::Paragraph,
            Gap::Page => Gap::Line,
            gap => gap,
        };
        if !text.is_empty() {
            match gap {
                // A soft hyphen is where the line was broken inside a word: no hyphen.
                Gap::Line if text.ends_with('\u{AD}') => {
                    text.pop();
                }
                Gap::Line if hyphenated(text, line) => {}
                Gap::Line => text.push('\n'),
                _ => text.push_str("\n\n"),
            }
        }
        let start = text.len();
        self.out
            .layout
            .pages
            .extend(std::iter::repeat_n(start, self.pending_pages));
        self.pending_pages = 0;
        self.out.text.push_str(line);
        self.after_heading = false;
    }

    fn heading(&mut self, title: String) {
        self.write(&title, Gap::Paragraph);
        let start = self.out.text.len() - title.len();
        self.out.layout.headings.push((start, title));
        self.after_heading = true;
    }

    fn finish(mut self) -> Extracted {
        let end = self.out.text.len();
        self.out
            .layout
            .pages
            .extend(std::iter::repeat_n(end, self.pending_pages));
        self.out
    }
}

/// A line ending in a hyphen right after a letter or digit, and the next starting with
/// one: a compound broken at its own hyphen ("Internationalization-" + "related",
/// "45-" + "day"), to be joined with the hyphen kept. Writers rarely hyphenate words
/// that have none, and a hyphen they add is a soft one.
fn hyphenated(before: &str, after: &str) -> bool {
    let mut end = before.chars().rev();
    end.next() == Some('-')
        && end.next().is_some_and(char::is_alphanumeric)
        && after.chars().next().is_some_and(char::is_alphanumeric)
}

fn ends_sentence(text: &str) -> bool {
    let text = text.trim_end_matches(['"', '\'', ')', '\u{201D}', '\u{2019}']);
    text.ends_with(['.', '!', '?', ':'])
}

#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use lopdf::content::Operation;
    use lopdf::{EncryptionState, EncryptionVersion, Permissions, StringFormat, dictionary};

    use super::*;

    /// One line of Helvetica (WinAnsi) at (x, y).
    fn line(x: i32, y: i32, size: i32, text: &[u8]) -> Vec<Operation> {
        vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), size.into()]),
            Operation::new("Td", vec![x.into(), y.into()]),
            Operation::new("Tj", vec![Object::string_literal(text)]),
            Operation::new("ET", vec![]),
        ]
    }

    /// Body text: 11-point lines 14 points apart from the top of the page down.
    fn body(lines: &[&str]) -> Vec<Operation> {
        lines
            .iter()
            .zip((0..).map(|i| 700 - 14 * i))
            .flat_map(|(text, y)| line(72, y, 11, text.as_bytes()))
            .collect()
    }

    fn document(pages: &[Vec<Operation>]) -> Document {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type1",
            "BaseFont" => "Helvetica",
            // WinAnsi draws 0xAD as a plain hyphen; this file says it is a soft one.
            "Encoding" => dictionary! {
                "BaseEncoding" => "WinAnsiEncoding",
                "Differences" => vec![173.into(), "sfthyphen".into()],
            },
        });
        let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
        let kids: Vec<Object> = pages
            .iter()
            .map(|operations| {
                let content = Content {
                    operations: operations.clone(),
                };
                let stream = Stream::new(dictionary! {}, content.encode().unwrap());
                let contents = doc.add_object(stream);
                let page =
                    dictionary! { "Type" => "Page", "Parent" => pages_id, "Contents" => contents };
                doc.add_object(page).into()
            })
            .collect();
        let tree = dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => pages.len() as i64,
            "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        };
        doc.objects.insert(pages_id, Object::Dictionary(tree));
        let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog);
        doc
    }

    fn save(mut doc: Document) -> Vec<u8> {
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        bytes
    }

    fn pdf(pages: &[Vec<Operation>]) -> Vec<u8> {
        save(document(pages))
    }

    #[test]
    fn running_headers_and_footers_are_dropped_and_pages_kept() {
        let pages: Vec<Vec<Operation>> = (1..=3)
            .map(|n| {
                let mut page = line(72, 800, 9, b"ACME Quarterly Report");
                page.extend(body(&[["One.", "Two.", "Three."][n - 1]]));
                page.extend(line(280, 40, 9, format!("Page {n} of 3").as_bytes()));
                page
            })
            .collect();
        let got = extract(&pdf(&pages)).unwrap();
        assert_eq!(got.text, "One.\n\nTwo.\n\nThree.");
        assert_eq!(got.layout.pages, [0, 6, 12]);
        let at = got.text.find("Two").unwrap();
        assert_eq!(got.layout.page_at(at), Some(2));
    }

    #[test]
    fn two_pages_are_too_few_to_call_a_line_repeated() {
        let page = |n: i32| [line(72, 800, 9, b"Header"), body(&[&format!("Page {n}.")])].concat();
        let got = extract(&pdf(&[page(1), page(2)])).unwrap();
        assert_eq!(got.text, "Header\n\nPage 1.\n\nHeader\n\nPage 2.");
    }

    #[test]
    fn lines_broken_at_hyphens_are_joined() {
        let lines = [
            "Internationalization-",
            "related work is exam\u{AD}",
            "ple text.",
            "Not - joined",
        ];
        let mut page = body(&lines[..2]);
        page[8] = Operation::new(
            "Tj",
            vec![Object::string_literal(&b"related work is exam\xAD"[..])],
        );
        page.extend(line(72, 672, 11, lines[2].as_bytes()));
        page.extend(line(72, 658, 11, lines[3].as_bytes()));
        let got = extract(&pdf(&[page])).unwrap();
        assert_eq!(
            got.text,
            "Internationalization-related work is example text.\nNot - joined"
        );
    }

    #[test]
    fn a_larger_short_line_is_a_heading() {
        let mut page = line(72, 740, 18, b"Introduction");
        page.extend(body(&["The body text starts here", "and goes on."]));
        let got = extract(&pdf(&[page])).unwrap();
        assert_eq!(
            got.text,
            "Introduction\n\nThe body text starts here\nand goes on."
        );
        assert_eq!(got.layout.headings, [(0, "Introduction".to_string())]);
        let plain = extract(&pdf(&[body(&["One size", "for every line."])])).unwrap();
        assert!(plain.layout.headings.is_empty());
    }

    #[test]
    fn a_wide_gap_between_lines_ends_a_paragraph() {
        let mut page = body(&["The first", "paragraph."]);
        page.extend(line(72, 650, 11, b"The second."));
        let got = extract(&pdf(&[page])).unwrap();
        assert_eq!(got.text, "The first\nparagraph.\n\nThe second.");
    }

    #[test]
    fn wide_kerning_in_a_tj_array_is_a_space() {
        let string = |s: &str| Object::String(s.as_bytes().to_vec(), StringFormat::Literal);
        let items = vec![
            string("Hel"),
            20.into(),
            string("lo"),
            (-400).into(),
            string("world"),
        ];
        let mut page = line(72, 700, 11, b"");
        page[3] = Operation::new("TJ", vec![Object::Array(items)]);
        let got = extract(&pdf(&[page])).unwrap();
        assert_eq!(got.text, "Hello world");
    }

    #[test]
    fn a_page_without_text_gives_no_text() {
        let rectangle = vec![
            Operation::new("re", vec![10.into(), 10.into(), 100.into(), 100.into()]),
            Operation::new("f", vec![]),
        ];
        let got = extract(&pdf(&[rectangle])).unwrap();
        assert_eq!(got.text, "");
        assert_eq!(got.layout.pages, [0]);
    }

    #[test]
    fn a_form_that_draws_itself_stops_at_the_depth_cap() {
        let mut doc = document(&[vec![Operation::new("Do", vec!["X".into()])]]);
        let content = [
            vec![Operation::new("Do", vec!["X".into()])],
            line(72, 700, 11, b"Hi"),
        ];
        let content = Content {
            operations: content.concat(),
        }
        .encode()
        .unwrap();
        let form = doc.add_object(Stream::new(dictionary! { "Subtype" => "Form" }, content));
        let pages = doc
            .catalog()
            .unwrap()
            .get(b"Pages")
            .unwrap()
            .as_reference()
            .unwrap();
        let tree = doc.get_dictionary_mut(pages).unwrap();
        let resources = tree.get(b"Resources").unwrap().as_reference().unwrap();
        let resources = doc.get_dictionary_mut(resources).unwrap();
        resources.set("XObject", dictionary! { "X" => form });
        let got = extract(&save(doc)).unwrap();
        assert_eq!(got.text, "Hi".repeat(MAX_FORM_DEPTH));
    }

    fn encrypted(user_password: &str) -> Vec<u8> {
        let mut doc = document(&[body(&["Secret text."])]);
        let id = Object::String(b"0123456789abcdef".to_vec(), StringFormat::Hexadecimal);
        doc.trailer.set("ID", vec![id.clone(), id]);
        let version = EncryptionVersion::V2 {
            document: &doc,
            owner_password: "owner",
            user_password,
            key_length: 128,
            permissions: Permissions::all(),
        };
        let state = EncryptionState::try_from(version).unwrap();
        doc.encrypt(&state).unwrap();
        save(doc)
    }

    #[test]
    fn encrypted_files_open_only_without_a_user_password() {
        assert_eq!(extract(&encrypted("")).unwrap().text, "Secret text.");
        assert_eq!(
            extract(&encrypted("user")).unwrap_err(),
            "encrypted (password-protected)"
        );
    }

    #[test]
    fn broken_files_fail_without_panicking() {
        let pages: Vec<Vec<Operation>> = (1..=3)
            .map(|n| body(&[&format!("Page {n}"), "text"]))
            .collect();
        let bytes = pdf(&pages);
        assert!(extract(b"%PDF-1.7\n").is_err());
        let mut seed = 0x9E37_79B9_u32;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize
        };
        let truncated = (0..bytes.len()).step_by(7).map(|n| bytes[..n].to_vec());
        let mutated = (0..300).map(|_| {
            let mut copy = bytes.clone();
            for _ in 0..1 + next() % 8 {
                let at = next() % copy.len();
                copy[at] = next() as u8;
            }
            copy
        });
        for input in truncated.chain(mutated) {
            let outcome = catch_unwind(AssertUnwindSafe(|| extract(&input)));
            assert!(
                outcome.is_ok(),
                "panicked on {:?}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}
