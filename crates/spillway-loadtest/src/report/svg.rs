//! A small line-chart drawer: the report's "vendored chart library". Charts are drawn here, in
//! Rust, as inline SVG, so the HTML file needs no script and no network to open.

use std::fmt::Write;

/// One line: a name and (x, y) points; y = None leaves a gap.
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, Option<f64>)>,
}

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
const W: f64 = 760.0;
const H: f64 = 260.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 52.0;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" step (1, 2 or 5 times a power of ten) giving about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn label(v: f64) -> String {
    if v.abs() >= 1000.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A chart with a title, a y-axis unit, seconds on the x axis and a legend.
pub fn line_chart(title: &str, unit: &str, lines: &[Line]) -> String {
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let ys = lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1));
    let x_max = xs.filter(|x| x.is_finite()).fold(1.0f64, f64::max);
    let y_max = ys.fold(0.0f64, f64::max);
    // An all-zero chart still gets a 0..1 axis (and a bounded number of grid lines).
    let y_span = if y_max > 0.0 && y_max.is_finite() {
        y_max
    } else {
        1.0
    };
    let y_step = nice_step(y_span, 5.0);
    let y_top = (y_span / y_step).ceil() * y_step;
    let x_step = nice_step(x_max, 8.0);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let px = |x: f64| LEFT + x / x_max * pw;
    let py = |y: f64| TOP + ph - y / y_top * ph;

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-label=\"{t}\">\
         <text x=\"{LEFT}\" y=\"18\" class=\"title\">{t}</text>",
        t = escape(title)
    );
    let mut y = 0.0;
    while y <= y_top + y_step / 2.0 {
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{x2}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" class=\"grid\"/>\
             <text x=\"{tx}\" y=\"{ty:.1}\" class=\"tick\" text-anchor=\"end\">{l}</text>",
            x2 = W - RIGHT,
            yy = py(y),
            tx = LEFT - 6.0,
            ty = py(y) + 4.0,
            l = label(y)
        );
        y += y_step;
    }
    let mut x = 0.0;
    while x <= x_max + 1e-9 {
        let _ = write!(
            s,
            "<text x=\"{xx:.1}\" y=\"{ty}\" class=\"tick\" text-anchor=\"middle\">{l}s</text>",
            xx = px(x),
            ty = TOP + ph + 16.0,
            l = label(x)
        );
        x += x_step;
    }
    let _ = write!(
        s,
        "<text x=\"14\" y=\"{cy}\" class=\"tick\" transform=\"rotate(-90 14 {cy})\" text-anchor=\"middle\">{u}</text>",
        cy = TOP + ph / 2.0,
        u = escape(unit)
    );
    for (i, l) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        // A gap (None) ends one polyline and the next point starts another.
        let mut runs: Vec<Vec<String>> = vec![Vec::new()];
        for (x, y) in &l.points {
            match y {
                Some(y) => {
                    if let Some(run) = runs.last_mut() {
                        run.push(format!("{:.1},{:.1}", px(*x), py(*y)));
                    }
                }
                None => runs.push(Vec::new()),
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            if run.len() == 1 {
                let (cx, cy) = run[0].split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    s,
                    "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"2\" fill=\"{color}\"/>"
                );
            } else {
                let _ = write!(
                    s,
                    "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
                    run.join(" ")
                );
            }
        }
        let lx = LEFT + (i as f64 % 4.0) * 175.0;
        let ly = H - 18.0 + (i / 4) as f64 * 14.0 - if lines.len() > 4 { 10.0 } else { 0.0 };
        let _ = write!(
            s,
            "<rect x=\"{lx}\" y=\"{ry}\" width=\"10\" height=\"10\" fill=\"{color}\"/>\
             <text x=\"{tx}\" y=\"{ty}\" class=\"legend\">{n}</text>",
            ry = ly - 9.0,
            tx = lx + 14.0,
            ty = ly,
            n = escape(&l.name)
        );
    }
    if lines.iter().all(|l| l.points.iter().all(|p| p.1.is_none())) {
        let _ = write!(
            s,
            "<text x=\"{cx}\" y=\"{cy}\" class=\"tick\" text-anchor=\"middle\">no data</text>",
            cx = LEFT + pw / 2.0,
            cy = TOP + ph / 2.0
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_empty_charts_are_bounded() {
        for points in [
            vec![],
            vec![(0.0, Some(0.0)), (5.0, Some(0.0))],
            vec![(1.0, None)],
        ] {
            let svg = line_chart(
                "t",
                "u",
                &[Line {
                    name: "a".into(),
                    points,
                }],
            );
            assert!(svg.len() < 10_000, "{} bytes", svg.len());
        }
    }
}
