//! Saved models: `<data.dir>/models/<name>@<version>/` holding `model.json` (everything needed
//! to score: parameters, feature names in order, calibration, training window, counts and
//! metrics) and `MODEL_CARD.md` for people. `<data.dir>/models/CURRENT` names the model
//! `lantern screen` uses by default.
//!
//! Versions are whole numbers per name, counting up; a saved version is never overwritten, so
//! a referral's `model` field always points at the exact parameters that scored it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Model, ModelError, Params};

pub fn models_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

pub fn model_dir(data_dir: &Path, id: &str) -> PathBuf {
    models_dir(data_dir).join(id)
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Every saved version of `name`, oldest first.
pub fn versions(data_dir: &Path, name: &str) -> Vec<u32> {
    let mut out: Vec<u32> = std::fs::read_dir(models_dir(data_dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let (model, version) = n.split_once('@')?;
            (model == name && e.path().join("model.json").exists())
                .then(|| version.parse().ok())
                .flatten()
        })
        .collect();
    out.sort_unstable();
    out
}

/// The next free version of `name`.
pub fn next_version(data_dir: &Path, name: &str) -> u32 {
    versions(data_dir, name).last().copied().unwrap_or(0) + 1
}

/// Writes the model folder atomically and durably: the files go into a hidden temporary
/// folder, each fsynced, the folder is fsynced and renamed into place, and `models/` is
/// fsynced. A crash leaves either no version folder or a complete one (a leftover temporary
/// folder is hidden and replaced by the next save).
pub fn save(data_dir: &Path, model: &Model) -> Result<PathBuf, ModelError> {
    let dir = model_dir(data_dir, &model.id());
    if dir.exists() {
        return Err(file_err(
            &dir,
            "already exists; versions are never overwritten",
        ));
    }
    let tmp = models_dir(data_dir).join(format!(".{}.partial", model.id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| file_err(&tmp, e))?;
    let json = serde_json::to_string_pretty(model).map_err(|e| file_err(&tmp, e))?;
    let lake = |e: crate::lake::LakeError| file_err(&tmp, e);
    crate::lake::write_bytes_atomic(&tmp.join("model.json"), json.as_bytes()).map_err(lake)?;
    crate::faults::crash_point("train.save.file");
    let card = model_card(model, &Card::default());
    crate::lake::write_bytes_atomic(&tmp.join("MODEL_CARD.md"), card.as_bytes()).map_err(lake)?;
    crate::faults::crash_point("train.save.file");
    std::fs::rename(&tmp, &dir).map_err(|e| file_err(&dir, e))?;
    std::fs::File::open(models_dir(data_dir))
        .and_then(|d| d.sync_all())
        .map_err(|e| file_err(&dir, e))?;
    crate::faults::crash_point("train.save.done");
    Ok(dir)
}

/// What a model card says beyond the model itself: who answers for it, how the promotion gate
/// decided, and its back-test results by group. Empty at save; filled in when the gate (or an
/// operator) decides, and the card rewritten.
#[derive(Debug, Clone, Default)]
pub struct Card {
    pub owner: String,
    pub contact: String,
    /// The decision in words: promoted or refused, by whom, and the gate's checks.
    pub decision: Option<String>,
    /// Who approved its use (the gate's run by an actor, or the operator who overrode it).
    pub approver: Option<String>,
    /// The back-test's fairness audit of this model's kind.
    pub fairness: Vec<crate::fairness::GroupRow>,
}

/// Rewrites a saved model's card (atomically and durably); `model.json` is never touched.
pub fn write_card(data_dir: &Path, model: &Model, card: &Card) -> Result<(), ModelError> {
    let path = model_dir(data_dir, &model.id()).join("MODEL_CARD.md");
    crate::lake::write_bytes_atomic(&path, model_card(model, card).as_bytes())
        .map_err(|e| file_err(&path, e))
}

/// Marks a model as the one screening uses by default (atomically and durably).
pub fn set_current(data_dir: &Path, id: &str) -> Result<(), ModelError> {
    let path = models_dir(data_dir).join("CURRENT");
    crate::faults::crash_point("train.current");
    crate::lake::write_bytes_atomic(&path, format!("{id}\n").as_bytes())
        .map_err(|e| file_err(&path, e))
}

/// Loads `name@version`, `name` (its newest version), or, when `which` is empty, the current
/// model.
pub fn load(data_dir: &Path, which: &str) -> Result<Model, ModelError> {
    let root = models_dir(data_dir);
    let id = if which.is_empty() {
        let current = root.join("CURRENT");
        std::fs::read_to_string(&current)
            .map(|s| s.trim().to_string())
            .map_err(|_| ModelError::NotFound("(current)".into(), root.display().to_string()))?
    } else if which.contains('@') {
        which.to_string()
    } else {
        match versions(data_dir, which).last() {
            Some(v) => format!("{which}@{v}"),
            None => {
                return Err(ModelError::NotFound(
                    which.into(),
                    root.display().to_string(),
                ))
            }
        }
    };
    let path = model_dir(data_dir, &id).join("model.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|_| ModelError::NotFound(id.clone(), root.display().to_string()))?;
    let model: Model = serde_json::from_str(&text).map_err(|e| file_err(&path, e))?;
    model.check_shape().map_err(|e| {
        file_err(
            &path,
            format!("{e}; the file is damaged or edited by hand: retrain with `lantern train`"),
        )
    })?;
    Ok(model)
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else {
        format!("{:.1}%", x * 100.0)
    }
}

fn num(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else {
        format!("{x:.3}")
    }
}

/// The human-readable model card, after Mitchell et al., "Model Cards for Model Reporting"
/// (2019): details, intended use, factors, metrics, data, results by group, ethical
/// considerations, caveats, and the promotion decision.
pub fn model_card(m: &Model, card: &Card) -> String {
    let t = &m.training;
    let mut s = String::new();
    let _ = writeln!(s, "# Model card: `{}`\n", m.id());
    let or_unset = |v: &str| {
        if v.is_empty() {
            "not configured (`[model.card]` in the configuration)".to_string()
        } else {
            v.to_string()
        }
    };
    let _ = writeln!(s, "## Model details\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| owner | {} |", or_unset(&card.owner));
    let _ = writeln!(s, "| contact | {} |", or_unset(&card.contact));
    let _ = writeln!(s, "| version | `{}`, created {} |", m.id(), m.created_at);
    let _ = writeln!(
        s,
        "| approved for use by | {} |\n",
        card.approver
            .as_deref()
            .unwrap_or("not yet decided (the promotion gate runs after training)")
    );
    let _ = writeln!(s, "## Intended use\n");
    let _ = writeln!(
        s,
        "- Ranks households screened each night by the chance that a caseworker's visit confirms \
         a crisis, so that each district's limited visits go first to those most likely in need.\n\
         - Users: district (시군구) welfare caseworkers, who decide whom to visit; the central \
         agency's operators and researchers, who run, audit and retrain it.\n\
         - Every referral carries its reasons; a caseworker's judgement decides what happens next.\n"
    );
    let _ = writeln!(s, "## Out-of-scope uses\n");
    let _ = writeln!(
        s,
        "- Any decision against a household: eligibility, sanctions, benefit cuts, fraud \
         investigation, policing. A high score means *likely in need*, not *at fault*.\n\
         - Ranking households that were not screened (no signals), or people rather than \
         households.\n\
         - Use outside the population and period it was trained on without a new back-test; use \
         on another country's data.\n\
         - Treating a low score as proof that a household is fine: crises with weak signals are \
         missed (see the caveats).\n"
    );
    let what = match &m.params {
        Params::Logistic { alpha, .. } => format!(
            "L2-regularised logistic regression (weighted, Newton's method, alpha = {alpha}) on standardized \
             features. Reason contributions are coefficient × standardized value."
        ),
        Params::Trees(g) => format!(
            "Gradient-boosted decision trees: {} trees (the size early stopping chose on the most \
             recent fitting referrals), depth {}, learning rate {}, L2 leaf penalty {}, \
             row/feature sampling {}/{} (seed {}). Monotone where pipelines/features.toml \
             declares it (more months overdue, more cut-offs, a more urgent report never lower \
             the score). Reason contributions are path contributions.",
            g.trees.len(),
            g.params.depth,
            g.params.learning_rate,
            g.params.lambda,
            g.params.row_sample,
            g.params.col_sample,
            g.params.seed
        ),
        Params::Rule(_) => "Today's practice as a rule: a service cut-off in the last 90 days \
             outranks everything, then the worst months overdue, then the number of unpaid bills. \
             Nothing is learned except the calibration."
            .to_string(),
    };
    let _ = writeln!(s, "**What it is.** {what}\n");
    let _ = writeln!(
        s,
        "**What it predicts.** The probability that a visit to a referred household confirms a \
         crisis (outcome `supported` or `declined_support`, SPEC §3), calibrated with Platt \
         scaling (a = {:.4}, b = {:.4}) on the most recent held-out referrals.\n",
        m.calibration.a, m.calibration.b
    );
    let _ = writeln!(s, "## Training data\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| labels decided before | {} |", t.as_of);
    let _ = writeln!(
        s,
        "| referrals from | {} to {} |",
        t.first_referral, t.last_referral
    );
    let _ = writeln!(
        s,
        "| fitted on | {} referrals before {} ({} confirmed crises) |",
        t.rows_fit, t.calibration_from, t.positives_fit
    );
    let _ = writeln!(
        s,
        "| calibrated and measured on | {} referrals from {} ({} confirmed crises); metrics cross-fitted: each half measured with the calibration fitted on the other |",
        t.rows_calibration, t.calibration_from, t.positives_calibration
    );
    let sources: Vec<String> = t
        .label_sources
        .iter()
        .map(|(k, n)| match k.as_str() {
            "estimated" => {
                format!("{n} with an estimated referral date (no list held the referral)")
            }
            "referral" => format!("{n} from referral lists"),
            other => format!("{n} {other}"),
        })
        .collect();
    if !sources.is_empty() {
        let _ = writeln!(s, "| label sources | {} |", sources.join("; "));
    }
    if t.inferred_negatives > 0 {
        let _ = writeln!(
            s,
            "| inferred negatives (reject inference) | {} screened, never-referred households with weak evidence, weight {} each ({} of them before {} in the held-out model's fit); never used for calibration or metrics |",
            t.inferred_negatives, t.inferred_weight, t.inferred_negatives_fit, t.calibration_from
        );
    }
    if t.refitted_on_all {
        let _ = writeln!(
            s,
            "| saved model | refitted on every labelled referral (held-out ones included) at the chosen size; calibration and metrics are those of the model fitted before {} |",
            t.calibration_from
        );
    }
    let _ = writeln!(
        s,
        "| features | {} (fingerprint `{}`) |",
        m.features.len(),
        m.feature_fingerprint
    );
    let _ = writeln!(s, "| created | {} |\n", m.created_at);
    let h = &m.metrics;
    let _ = writeln!(s, "## Held-out metrics\n");
    let _ = writeln!(
        s,
        "| ROC-AUC | PR-AUC | Brier | base rate |\n|---|---|---|---|"
    );
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} |\n",
        num(h.roc_auc),
        num(h.pr_auc),
        num(h.brier),
        pct(h.base_rate)
    );
    let _ = writeln!(s, "### Reliability (calibration)\n");
    let _ = writeln!(
        s,
        "| predicted | households | mean predicted | confirmed |\n|---|---|---|---|"
    );
    for b in &h.reliability {
        let _ = writeln!(
            s,
            "| {:.0}–{:.0}% | {} | {} | {} |",
            b.lower * 100.0,
            b.upper * 100.0,
            b.count,
            pct(b.mean_predicted),
            pct(b.observed_rate)
        );
    }
    let _ = writeln!(s, "\n## Factors: protected attributes\n");
    let names = |idx: &mut dyn Iterator<Item = usize>| -> String {
        let v: Vec<String> = idx
            .filter_map(|i| m.features.get(i))
            .map(|f| format!("`{f}`"))
            .collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    };
    let p = &m.protected;
    let _ = writeln!(
        s,
        "Protected attributes named by the configuration: {}.\n\n\
         - Withheld from the model (held at their imputed value in fitting and scoring, so they \
         cannot move a score): {}.\n\
         - Never shown to caseworkers as a reason: {}.\n\
         - The back-test fits the trees both ways (`trees_with_protected` / \
         `trees_without_protected`) and reports precision and the fairness audit of each.\n",
        if p.attributes.is_empty() {
            "none".to_string()
        } else {
            p.attributes.join(", ")
        },
        names(&mut p.withheld.iter().map(|(i, _)| *i)),
        names(&mut p.hidden.iter().copied()),
    );
    let _ = writeln!(s, "## Results by group (back-test)\n");
    if card.fairness.is_empty() {
        let _ = writeln!(
            s,
            "No back-test has been attached to this card yet (`lantern train` attaches the \
             promotion gate's; `lantern backtest` reports it on its own).\n"
        );
    } else {
        let _ = writeln!(
            s,
            "This kind of model on the promotion gate's back-test, its top-capacity picks per \
             district and night: ratios to each attribute's largest group with 95% intervals. \
             BREACH: the whole interval outside the band. Measured on referred households only \
             (see the caveats).\n"
        );
        let _ = writeln!(s, "| {} |", crate::fairness::TABLE_HEADER.join(" | "));
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for row in crate::fairness::table_rows(&card.fairness) {
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Promotion decision\n");
    let _ = writeln!(
        s,
        "{}\n",
        card.decision
            .as_deref()
            .unwrap_or("Not decided yet: the promotion gate runs after training.")
    );
    let _ = writeln!(s, "## Ethical considerations and caveats\n");
    let _ = writeln!(
        s,
        "- **Selective labels.** Labels exist only for households that were referred and visited. Past referrals were \
         chosen by the rule in use then, so the model learned *which referred households were in \
         crisis*, not the risk of every household; households the old rule never picked are \
         under-represented. Back-tests (`lantern backtest`) report metrics on referred households \
         only, and say so.\n\
         - What is corrected: reject inference adds never-referred, weak-evidence households as \
         down-weighted negatives, so the model has seen the households that look nothing like a \
         referral. What cannot be: a household in crisis whose evidence is weak (bills paid by \
         auto-debit while it slides) is such a negative by construction, and households with \
         strong evidence that no rule ever picked have no label at all.\n\
         - `unreachable` and `moved` outcomes carry no label and are left out, which hides exactly \
         the households hardest to reach; repeated flags without contact are escalated at \
         screening instead.\n\
         - Every night's list carries its own fairness audit (`fairness.json`, the districts \
         page): selection rate, and precision and missed crises as the calibrated scores expect \
         them, by household type, age band, disability and region kind, with intervals."
    );
    s
}
