//! Trend charts: one measurement over time as an inline SVG line chart, with its reference range
//! shaded, and the same readings as a table for people who cannot see the chart.
//!
//! Owns: the chart geometry, the SVG markup (presentation attributes only: the portal's CSP
//! allows no inline styles and no scripts) and the table alternative. Used by the clinician's
//! single view ([`crate::view`]) and meant for the person-held record's results page too.
//! Does not: read FHIR (the caller turns `Observation.value[x]` and
//! `Observation.referenceRange` into [`Point`]s and a range, see
//! <https://hl7.org/fhir/R4/observation.html>) or decide what is abnormal beyond "outside the
//! range it was given".

use maud::{Markup, html};

/// One reading: when (a FHIR date or dateTime) and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub when: String,
    pub value: f64,
}

/// Readings beyond this many (the newest are kept) would make the chart unreadable and the page
/// heavy; the caller says how many there were in all.
pub const MAX_POINTS: usize = 20;

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

const LINE: &str = "#005eb8";
const RANGE_FILL: &str = "#e6f4ea";
const RANGE_EDGE: &str = "#007f3b";
const AXIS: &str = "#4c6272";
const OUT_OF_RANGE: &str = "#d5281b";

/// A number for people: no trailing zeros, at most two decimals (`5.5`, `120`, `0.25`).
pub fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.to_string()
    }
}

/// Milliseconds since 1970 of a FHIR date or dateTime (its start), for placing points in time.
fn instant(when: &str) -> Option<f64> {
    concord_fhir::primitive::date_range(when).map(|r| r.low as f64)
}

/// Whether `value` lies outside `range` (inclusive bounds).
pub fn out_of_range(value: f64, range: Option<(f64, f64)>) -> bool {
    range.is_some_and(|(low, high)| value < low || value > high)
}

/// A trend chart of `points` (any order; drawn oldest to newest, the newest [`MAX_POINTS`]) in
/// `unit`, labelled `label` (the measurement's name), with `range` (low, high) shaded when given.
/// The figure carries an SVG with `role="img"` and a `<title>` summarising the trend (its
/// accessible name), followed by the readings as a table inside a `<details>`.
pub fn trend(points: &[Point], range: Option<(f64, f64)>, unit: &str, label: &str) -> Markup {
    let mut dated: Vec<(f64, &Point)> = points
        .iter()
        .filter(|p| p.value.is_finite())
        .filter_map(|p| Some((instant(&p.when)?, p)))
        .collect();
    dated.sort_by(|a, b| a.0.total_cmp(&b.0));
    let skipped = dated.len().saturating_sub(MAX_POINTS);
    let dated = &dated[skipped..];
    let unit_suffix = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    let (Some(first), Some(last)) = (dated.first(), dated.last()) else {
        return html! { p { "No readings to chart for " (label) "." } };
    };

    // The value axis covers every reading and the range, with a little room either side.
    let mut low = dated
        .iter()
        .map(|(_, p)| p.value)
        .fold(f64::INFINITY, f64::min);
    let mut high = dated
        .iter()
        .map(|(_, p)| p.value)
        .fold(f64::NEG_INFINITY, f64::max);
    if let Some((r_low, r_high)) = range {
        low = low.min(r_low);
        high = high.max(r_high);
    }
    let pad = if high > low {
        (high - low) * 0.1
    } else {
        low.abs().max(1.0) * 0.1
    };
    low -= pad;
    high += pad;
    let (t0, t1) = (first.0, last.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |t: f64| {
        if t1 > t0 {
            LEFT + (t - t0) / (t1 - t0) * plot_w
        } else {
            LEFT + plot_w / 2.0
        }
    };
    let y = |v: f64| TOP + (high - v) / (high - low) * plot_h;
    let coords: Vec<(f64, f64, &Point)> =
        dated.iter().map(|(t, p)| (x(*t), y(p.value), *p)).collect();
    let polyline: String = coords
        .iter()
        .map(|(cx, cy, _)| format!("{cx:.0},{cy:.0}"))
        .collect::<Vec<_>>()
        .join(" ");
    let ticks = [high - pad, (high + low) / 2.0, low + pad];

    let latest = last.1;
    let mut description = format!(
        "{label}: {} readings from {} to {}; latest {}{unit_suffix} on {}",
        dated.len(),
        crate::text::date(&first.1.when),
        crate::text::date(&latest.when),
        number(latest.value),
        crate::text::date(&latest.when),
    );
    if let Some((r_low, r_high)) = range {
        description.push_str(&format!(
            "; reference range {} to {}{unit_suffix}",
            number(r_low),
            number(r_high)
        ));
        let outside = dated
            .iter()
            .filter(|(_, p)| out_of_range(p.value, range))
            .count();
        description.push_str(&format!("; {outside} outside the range"));
    }
    description.push('.');

    html! {
        figure class="trend" {
            svg class="chart" role="img" viewBox={"0 0 " (WIDTH) " " (HEIGHT)}
                width=(WIDTH) height=(HEIGHT) xmlns="http://www.w3.org/2000/svg" {
                // The title is the chart's accessible name; the table below has the readings.
                title { (description) }
                @if let Some((r_low, r_high)) = range {
                    @let top = y(r_high.min(high));
                    @let bottom = y(r_low.max(low));
                    rect x=(LEFT) y=(format!("{top:.0}")) width=(plot_w) height=(format!("{:.0}", (bottom - top).max(0.0)))
                        fill=(RANGE_FILL) stroke=(RANGE_EDGE) stroke-dasharray="4 3" {}
                }
                path d=(format!("M{LEFT} {TOP}V{}H{}", TOP + plot_h, LEFT + plot_w)) fill="none" stroke=(AXIS) {}
                g font-size="11" fill=(AXIS) {
                    @for tick in ticks {
                        text x=(LEFT - 6.0) y=(format!("{:.0}", y(tick) + 4.0)) text-anchor="end" { (number(tick)) }
                    }
                    text x=(LEFT) y=(HEIGHT - 8.0) { (crate::text::date(&first.1.when)) }
                    text x=(LEFT + plot_w) y=(HEIGHT - 8.0) text-anchor="end" { (crate::text::date(&latest.when)) }
                }
                @if coords.len() > 1 {
                    polyline points=(polyline) fill="none" stroke=(LINE) stroke-width="2" {}
                }
                g fill=(LINE) {
                    @for (cx, cy, p) in &coords {
                        @if out_of_range(p.value, range) {
                            circle cx=(format!("{cx:.0}")) cy=(format!("{cy:.0}")) r="4" fill=(OUT_OF_RANGE) {}
                        } @else {
                            circle cx=(format!("{cx:.0}")) cy=(format!("{cy:.0}")) r="3" {}
                        }
                    }
                }
            }
            figcaption {
                (label)
                @if !unit.is_empty() { " (" (unit) ")" }
                @if let Some((r_low, r_high)) = range {
                    ", reference range " (number(r_low)) " to " (number(r_high))
                }
                @if skipped > 0 { ". The newest " (dated.len()) " of " (dated.len() + skipped) " readings are shown." }
            }
            details {
                summary { "Show " (label) " readings as a table" }
                table class="data-table" {
                    caption class="visually-hidden" { (label) " readings" }
                    thead { tr { th scope="col" { "Date" } th scope="col" { "Value" } } }
                    tbody {
                        @for (_, _, p) in coords.iter().rev() {
                            tr {
                                td { (crate::text::date_time(&p.when)) }
                                td {
                                    (number(p.value)) (unit_suffix)
                                    @if out_of_range(p.value, range) { " " span class="tag tag-urgent" { "outside range" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(values: &[(&str, f64)]) -> Vec<Point> {
        values
            .iter()
            .map(|(w, v)| Point {
                when: (*w).into(),
                value: *v,
            })
            .collect()
    }

    #[test]
    fn numbers_read_plainly() {
        assert_eq!(number(120.0), "120");
        assert_eq!(number(5.50), "5.5");
        assert_eq!(number(0.256), "0.26");
        assert_eq!(number(-0.001), "0");
    }

    #[test]
    fn a_chart_is_an_accessible_svg_with_a_table() {
        let html = trend(
            &points(&[
                ("2026-01-02", 7.5),
                ("2025-06-01", 5.0),
                ("2026-03-01", 6.1),
            ]),
            Some((4.0, 6.0)),
            "mmol/L",
            "HbA1c",
        )
        .into_string();
        assert!(html.contains("role=\"img\""), "{html}");
        assert!(html.contains("<title>HbA1c: 3 readings from 1 Jun 2025 to 1 Mar 2026"));
        assert!(html.contains("2 outside the range"), "{html}");
        assert!(html.contains("<polyline"));
        assert!(html.contains("<th scope=\"col\">Date</th>"));
        assert_eq!(html.matches("<circle").count(), 3);
        assert!(!html.contains("style="));
    }

    #[test]
    fn one_reading_and_no_readings() {
        let html = trend(&points(&[("2026-01-02", 80.0)]), None, "kg", "Weight").into_string();
        assert!(!html.contains("<polyline"));
        assert_eq!(html.matches("<circle").count(), 1);
        let none = trend(&[], None, "kg", "Weight").into_string();
        assert!(none.contains("No readings"));
    }
}
