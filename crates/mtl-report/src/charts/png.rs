//! The PNG backend: plotters' bitmap backend with text drawn on one baseline.
//! plotters 0.3.7 places each glyph by its own rounded pixel bounds (truncating
//! toward zero), so at the report's 12–14 px sizes a period sits a pixel or two
//! above the digits and `+22.71` reads as `+22·71`. Here every glyph is positioned
//! at its exact pen position on a shared baseline and rasterised there; layout and
//! anchoring are plotters' own (same width, same height), so nothing moves but the
//! glyphs' vertical placement. Everything else is passed through.
//!
//! ```text
//! let root = PngBackend::new(BitMapBackend::new(&path, (800, 600))).into_drawing_area();
//! ```

use ab_glyph::{Font, ScaleFont};
use plotters::backend::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind};

use super::common::{font, text_width};

/// [`BitMapBackend`] with text drawn on one baseline.
pub(super) struct PngBackend<'a> {
    inner: BitMapBackend<'a>,
}

impl<'a> PngBackend<'a> {
    pub(super) fn new(inner: BitMapBackend<'a>) -> PngBackend<'a> {
        PngBackend { inner }
    }
}

type Failure<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

impl<'a> DrawingBackend for PngBackend<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), Failure<'a>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), Failure<'a>> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, colour: BackendColor) -> Result<(), Failure<'a>> {
        self.inner.draw_pixel(point, colour)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Failure<'a>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Failure<'a>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Failure<'a>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        centre: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Failure<'a>> {
        self.inner.draw_circle(centre, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vertices: I,
        style: &S,
    ) -> Result<(), Failure<'a>> {
        self.inner.fill_polygon(vertices, style)
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Result<(), Failure<'a>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), Failure<'a>> {
        let colour = style.color();
        let Some(font) = font() else { return self.inner.draw_text(text, style, pos) };
        if colour.alpha == 0.0 {
            return Ok(());
        }
        let size = style.size() as f32;
        // plotters' layout box of the text: its ab_glyph width, and `size / 1.24` high.
        let width = text_width(text, style.size()) as i32;
        let height = (style.size() / 1.24) as i32;
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -width,
            HPos::Center => -width / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let (canvas_width, canvas_height) = self.get_size();
        let scaled = font.as_scaled(size);
        let mut pen = 0.0_f32;
        let mut previous = None;
        let mut result = Ok(());
        for character in text.chars() {
            let id = scaled.glyph_id(character);
            if let Some(previous) = previous {
                pen += scaled.kern(previous, id);
            }
            // The baseline where plotters puts it: half the size below the box's top.
            let glyph = id.with_scale_and_position(size, ab_glyph::point(pen, size / 2.0));
            pen += scaled.h_advance(id);
            previous = Some(id);
            let Some(outline) = font.outline_glyph(glyph) else { continue };
            let bounds = outline.px_bounds();
            outline.draw(|x, y, coverage| {
                if result.is_err() || coverage <= 0.0 {
                    return;
                }
                let glyph_x = bounds.min.x as i32 + x as i32 + dx;
                let glyph_y = bounds.min.y as i32 + y as i32 + dy;
                let (x, y) = transform.transform(glyph_x, glyph_y);
                let (x, y) = (pos.0 + x, pos.1 + y);
                if x >= 0 && y >= 0 && x < canvas_width as i32 && y < canvas_height as i32 {
                    let pixel = BackendColor { alpha: colour.alpha * f64::from(coverage.min(1.0)), rgb: colour.rgb };
                    result = self.inner.draw_pixel((x, y), pixel);
                }
            });
            result?;
            result = Ok(());
        }
        Ok(())
    }
}
