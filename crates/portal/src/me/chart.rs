//! A small trend chart for the patient's results page: an inline SVG line of one measurement over
//! time, with the reference range shaded when the results carry one
//! (<https://hl7.org/fhir/R4/observation-definitions.html#Observation.referenceRange>).
//!
//! Owns only the drawing. Does not: choose or fetch the values (`record` does) or replace the
//! table every chart sits beside (the table is the accessible alternative). Presentation
//! attributes only (no `style`), so the portal's CSP holds. The lead may replace this with the
//! shared `crate::chart` once both are merged.

use maud::{Markup, html};

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 200.0;
const PAD_LEFT: f64 = 48.0;
const PAD_RIGHT: f64 = 16.0;
const PAD_Y: f64 = 16.0;

/// One point: when (milliseconds, for spacing) and the value.
pub struct Point {
    pub at_ms: i64,
    pub value: f64,
}

/// An SVG line chart of `points` (oldest first), labelled `label` for screen readers.
pub fn trend(label: &str, unit: &str, points: &[Point], range: Option<(f64, f64)>) -> Markup {
    let values = points
        .iter()
        .map(|p| p.value)
        .chain(range.into_iter().flat_map(|(low, high)| [low, high]));
    let (mut min, mut max) =
        values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if points.is_empty() || !min.is_finite() || !max.is_finite() {
        return html! {};
    }
    if (max - min).abs() < f64::EPSILON {
        min -= 1.0;
        max += 1.0;
    }
    let first = points.first().map_or(0, |p| p.at_ms);
    let last = points.last().map_or(0, |p| p.at_ms);
    let span = (last - first).max(1) as f64;
    let x = |at: i64| {
        if points.len() == 1 {
            PAD_LEFT + (WIDTH - PAD_LEFT - PAD_RIGHT) / 2.0
        } else {
            PAD_LEFT + (at - first) as f64 / span * (WIDTH - PAD_LEFT - PAD_RIGHT)
        }
    };
    let y = |v: f64| PAD_Y + (max - v) / (max - min) * (HEIGHT - 2.0 * PAD_Y);
    let line: Vec<String> = points
        .iter()
        .map(|p| format!("{:.1},{:.1}", x(p.at_ms), y(p.value)))
        .collect();
    let description = format!(
        "{label} over time, {} results, latest {} {unit}",
        points.len(),
        number(points.last().map_or(0.0, |p| p.value))
    );
    html! {
        svg class="chart" role="img" aria-label=(description)
            viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT)
            xmlns="http://www.w3.org/2000/svg" {
            title { (description) }
            rect x="0" y="0" width=(WIDTH) height=(HEIGHT) fill="#ffffff" {}
            @if let Some((low, high)) = range {
                rect x=(PAD_LEFT) y=(format!("{:.1}", y(high))) width=(WIDTH - PAD_LEFT - PAD_RIGHT)
                    height=(format!("{:.1}", (y(low) - y(high)).max(1.0))) fill="#e6f4ea" {}
            }
            line x1=(PAD_LEFT) y1=(PAD_Y) x2=(PAD_LEFT) y2=(HEIGHT - PAD_Y) stroke="#4c6272" {}
            line x1=(PAD_LEFT) y1=(HEIGHT - PAD_Y) x2=(WIDTH - PAD_RIGHT) y2=(HEIGHT - PAD_Y) stroke="#4c6272" {}
            text x="4" y=(format!("{:.1}", y(max) + 4.0)) font-size="12" fill="#212b32" { (number(max)) }
            text x="4" y=(format!("{:.1}", y(min) + 4.0)) font-size="12" fill="#212b32" { (number(min)) }
            polyline points=(line.join(" ")) fill="none" stroke="#005eb8" stroke-width="2" {}
            @for p in points {
                circle cx=(format!("{:.1}", x(p.at_ms))) cy=(format!("{:.1}", y(p.value))) r="4" fill="#005eb8" {}
            }
        }
    }
}

/// A value without a trailing `.0`.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{:.1}", value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_an_image_with_a_description() {
        let points = [
            Point {
                at_ms: 0,
                value: 120.0,
            },
            Point {
                at_ms: 1000,
                value: 135.0,
            },
        ];
        let svg = trend("Systolic", "mmHg", &points, Some((90.0, 140.0))).into_string();
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("latest 135 mmHg"));
        assert!(svg.contains("<polyline"));
        assert!(!svg.contains("style="));
        assert!(trend("x", "", &[], None).into_string().is_empty());
    }
}
