//! HTML through a maintained template engine (minijinja) with auto-escaping: every value a
//! template prints is HTML-escaped unless the template says otherwise, so a household id, a
//! district name or a reason label can never break a page or inject markup. The templates are
//! in `templates/` and compiled into the binary.

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[error("rendering {name}: {message}; this is a bug in Lantern, please report it")]
pub struct TemplateError {
    pub name: String,
    pub message: String,
}

const TEMPLATES: &[(&str, &str)] = &[
    (
        "_style.html",
        include_str!("../../../templates/_style.html"),
    ),
    (
        "district.html",
        include_str!("../../../templates/district.html"),
    ),
    ("index.html", include_str!("../../../templates/index.html")),
    (
        "report.html",
        include_str!("../../../templates/report.html"),
    ),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("built-in template {name} does not parse: {e}"));
        }
        env
    })
}

/// Renders the template `name` (a `.html` name: auto-escaped) with `context`.
pub fn render(name: &str, context: impl Serialize) -> Result<String, TemplateError> {
    let err = |e: minijinja::Error| TemplateError {
        name: name.to_string(),
        message: e.to_string(),
    };
    let t = env().get_template(name).map_err(err)?;
    let mut out = t.render(context).map_err(err)?;
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every template parses, and values are escaped: markup in data stays text.
    #[test]
    fn templates_parse_and_escape_what_they_print() {
        for (name, _) in TEMPLATES {
            env().get_template(name).unwrap();
        }
        let page = render(
            "index.html",
            serde_json::json!({
                "as_of": "2026-11-01", "model": "<script>x</script>", "referred": 1,
                "urgent": 0, "escalated": 0,
                "districts": [{"sido": "서울 & 경기", "code": "11110", "name": "종로구", "capacity": 18, "listed": 1}]
            }),
        )
        .unwrap();
        assert!(page.contains("&lt;script&gt;") && !page.contains("<script>"));
        assert!(page.contains("서울 &amp; 경기"));
    }
}
