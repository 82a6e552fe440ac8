"""The conventional pipeline Lantern is measured against: DuckDB features + LightGBM.

What a capable data team would build with standard tools, from the same SPEC files Lantern
reads (simulated NDJSON signals and outcomes, the households CSV, optionally the legacy lists):

1. read and validate the NDJSON in DuckDB (required fields, enums, ranges, district registry,
   dates), drop what fails (counted), deduplicate by `event_id`;
2. point-in-time features as of each (household, date): only events observed and reported by
   that date, in the same windows as Lantern (30/90/180/365 days);
3. labels: case outcomes (SPEC 3), the referral date from the lists when given, else
   `decided_on` less 30 days (the same estimate Lantern makes);
4. LightGBM with early stopping on the most recent fifth of the labels, refitted on all of them;
5. each screening night: every household with a signal in the last 365 days, ranked, the top
   `capacity` per district.

`--ceiling` trains the same learner on the simulator's ground truth for screened households
(what perfect labels would allow), the upper bound of what the signals can tell.

Writes one CSV per night: household_id, district_code, as_of, score.
"""

import argparse
import csv
import math
import os
import sys
from datetime import date, timedelta

import duckdb
import lightgbm as lgb
import numpy as np

UTILITIES = ["electricity", "water", "gas", "telecom", "health_insurance", "housing_fee", "rent",
             "pension_loan", "credit"]
CONCERNS = ["isolation", "food", "housing", "health", "mental_health", "addiction", "debt",
            "child_care", "elder_care", "disability_care", "suicide_risk", "unemployment"]
GAPS = ["benefit_terminated", "application_rejected", "eligible_not_enrolled", "service_ended",
        "contact_failed"]
PROGRAMS = ["basic_livelihood", "emergency_welfare", "housing_benefit", "basic_pension",
            "disability_pension", "child_allowance", "energy_voucher", "medical_aid", "other"]
TYPES = ["single", "elderly_single", "single_parent", "couple", "family", "other"]
AGES = ["0-19", "20-39", "40-64", "65+"]
WINDOWS = [30, 90, 180, 365]


def q(values):
    return ", ".join("'" + v + "'" for v in values)


def load(con, sim, registry, ingest_day):
    """Reads, validates and deduplicates the inputs into tables; returns reject counts."""
    con.execute(f"CREATE TABLE districts AS SELECT district_code::VARCHAR AS district_code, kind "
                f"FROM read_csv('{registry}', header=true, all_varchar=true)")
    rejects = {}
    common = ("event_id IS NOT NULL AND length(event_id) BETWEEN 1 AND 64 "
              "AND regexp_full_match(household_id, '[A-Za-z0-9_-]{8,64}') "
              "AND district_code IN (SELECT district_code FROM districts) "
              f"AND observed_on IS NOT NULL AND observed_on <= DATE '{ingest_day}' + 1 "
              "AND (reported_on IS NULL OR reported_on >= observed_on)")
    # Each kind's own fields, cast leniently: a value of the wrong type becomes NULL and the
    # record fails its rule below (counted), as a reject with a reason would in Lantern.
    specs = {
        "ua": ("utility-arrears",
               "TRY_CAST(utility AS VARCHAR) AS utility, TRY_CAST(months_overdue AS INTEGER) AS months_overdue, "
               "TRY_CAST(amount_krw AS BIGINT) AS amount_krw, TRY_CAST(service_cut AS BOOLEAN) AS service_cut",
               f"utility IN ({q(UTILITIES)}) AND months_overdue BETWEEN 0 AND 240 "
               "AND amount_krw BETWEEN 0 AND 10000000000 AND service_cut IS NOT NULL"),
        "cr": ("council-reports",
               "TRY_CAST(urgency AS INTEGER) AS urgency, TRY_CAST(concerns AS VARCHAR[]) AS concerns",
               "urgency BETWEEN 1 AND 3 AND len(concerns) > 0"),
        "sg": ("service-gaps",
               "TRY_CAST(program AS VARCHAR) AS program, TRY_CAST(gap AS VARCHAR) AS gap",
               f"gap IN ({q(GAPS)}) AND program IN ({q(PROGRAMS)})"),
    }
    for table, (name, fields, rule) in specs.items():
        path = os.path.join(sim, "signals", f"{name}.ndjson")
        con.execute(f"CREATE TABLE raw_{table} AS SELECT * FROM read_json_auto('{path}', "
                    "format='newline_delimited', ignore_errors=true, union_by_name=true, "
                    "sample_size=-1)")
        total = con.execute(f"SELECT count(*) FROM raw_{table}").fetchone()[0]
        cols = {r[0] for r in con.execute(f"DESCRIBE raw_{table}").fetchall()}
        reported = "TRY_CAST(reported_on AS DATE)" if "reported_on" in cols else "NULL::DATE"
        con.execute(f"""
            CREATE TABLE typed_{table} AS SELECT
                TRY_CAST(event_id AS VARCHAR) AS event_id,
                TRY_CAST(household_id AS VARCHAR) AS household_id,
                TRY_CAST(district_code AS VARCHAR) AS district_code,
                TRY_CAST(observed_on AS DATE) AS observed_on, {reported} AS reported_on, {fields}
            FROM raw_{table}""")
        con.execute(f"""
            CREATE TABLE {table} AS SELECT * EXCLUDE (nth) FROM (
                SELECT *, coalesce(reported_on, DATE '{ingest_day}') AS known_on,
                       row_number() OVER (PARTITION BY event_id ORDER BY observed_on) AS nth
                FROM typed_{table} WHERE {common} AND {rule}) WHERE nth = 1""")
        kept = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        rejects[name] = total - kept
    out = os.path.join(sim, "outcomes", "case-outcomes.ndjson")
    con.execute(f"""
        CREATE TABLE outcomes AS SELECT referral_id, household_id, district_code, outcome,
               TRY_CAST(decided_on AS DATE) AS decided_on
        FROM read_json_auto('{out}', format='newline_delimited', ignore_errors=true)
        WHERE outcome IN ('supported', 'declined_support', 'no_crisis', 'unreachable', 'moved')
          AND TRY_CAST(decided_on AS DATE) IS NOT NULL""")
    hh = os.path.join(sim, "households.csv")
    con.execute(f"CREATE TABLE households AS SELECT * FROM read_csv('{hh}', header=true, all_varchar=true)")
    return rejects


def features_sql(cohort):
    """Point-in-time features of every (household_id, as_of) in table `cohort`."""
    ua = []
    for w in WINDOWS:
        win = f"u.observed_on > c.as_of - {w}"
        for ut in UTILITIES:
            f = f"FILTER (WHERE {win} AND u.utility = '{ut}')"
            ua += [f"count(*) {f} AS ua_{ut}_n_{w}", f"coalesce(max(u.months_overdue) {f}, 0) AS ua_{ut}_od_{w}",
                   f"coalesce(ln(1 + sum(u.amount_krw) {f}), 0) AS ua_{ut}_krw_{w}"]
        ua += [f"count(*) FILTER (WHERE {win} AND u.service_cut) AS ua_cut_{w}",
               f"count(DISTINCT u.utility) FILTER (WHERE {win}) AS ua_kinds_{w}"]
    ua += ["coalesce(date_diff('day', max(u.observed_on), max(c.as_of)), 366) AS ua_days_since"]
    cr = []
    for w in [90, 365]:
        win = f"r.observed_on > c.as_of - {w}"
        cr += [f"count(*) FILTER (WHERE {win}) AS cr_n_{w}", f"coalesce(max(r.urgency) FILTER (WHERE {win}), 0) AS cr_urg_{w}"]
    cr += [f"count(*) FILTER (WHERE list_contains(r.concerns, '{k}')) AS cr_{k}" for k in CONCERNS]
    cr += ["count(*) FILTER (WHERE r.urgency = 3 AND r.observed_on > c.as_of - 7) AS cr_urgent_7",
           "coalesce(date_diff('day', max(r.observed_on), max(c.as_of)), 366) AS cr_days_since"]
    sg = []
    for w in [90, 365]:
        sg += [f"count(*) FILTER (WHERE g.observed_on > c.as_of - {w}) AS sg_n_{w}"]
    sg += [f"count(*) FILTER (WHERE g.gap = '{k}') AS sg_{k}" for k in GAPS]
    sg += ["count(DISTINCT g.program) AS sg_programs",
           "coalesce(date_diff('day', max(g.observed_on), max(c.as_of)), 366) AS sg_days_since"]
    hh = [f"(h.household_type = '{t}')::INT AS hh_{t.replace('-', '_')}" for t in TYPES]
    hh += [f"(h.head_age_band = '{a}')::INT AS hh_age_{a.replace('-', '_').replace('+', 'p')}" for a in AGES]
    hh += ["coalesce(TRY_CAST(h.members AS INT), 0) AS hh_members", "(h.disability = 'true')::INT AS hh_disability",
           "(h.household_id IS NOT NULL)::INT AS hh_known"]
    pit = "{a}.observed_on <= c.as_of AND {a}.known_on <= c.as_of AND {a}.observed_on > c.as_of - 365"
    return f"""
    WITH fu AS (SELECT c.household_id, c.as_of, {', '.join(ua)}
                FROM {cohort} c JOIN ua u ON u.household_id = c.household_id AND {pit.format(a='u')}
                GROUP BY c.household_id, c.as_of),
         fr AS (SELECT c.household_id, c.as_of, {', '.join(cr)}
                FROM {cohort} c JOIN cr r ON r.household_id = c.household_id AND {pit.format(a='r')}
                GROUP BY c.household_id, c.as_of),
         fg AS (SELECT c.household_id, c.as_of, {', '.join(sg)}
                FROM {cohort} c JOIN sg g ON g.household_id = c.household_id AND {pit.format(a='g')}
                GROUP BY c.household_id, c.as_of),
         place AS (SELECT c.household_id, c.as_of, arg_max(e.district_code, e.observed_on) AS district_code
                FROM {cohort} c JOIN (SELECT household_id, district_code, observed_on, known_on FROM ua
                                      UNION ALL SELECT household_id, district_code, observed_on, known_on FROM cr
                                      UNION ALL SELECT household_id, district_code, observed_on, known_on FROM sg) e
                  ON e.household_id = c.household_id AND {pit.format(a='e')}
                GROUP BY c.household_id, c.as_of)
    SELECT c.household_id, c.as_of, p.district_code, fu.* EXCLUDE (household_id, as_of),
           fr.* EXCLUDE (household_id, as_of), fg.* EXCLUDE (household_id, as_of), {', '.join(hh)}
    FROM {cohort} c
    LEFT JOIN place p USING (household_id, as_of)
    LEFT JOIN fu USING (household_id, as_of) LEFT JOIN fr USING (household_id, as_of)
    LEFT JOIN fg USING (household_id, as_of)
    LEFT JOIN households h ON h.household_id = c.household_id
    ORDER BY c.household_id, c.as_of"""


def matrix(con, cohort):
    df = con.execute(features_sql(cohort)).df()
    feats = [c for c in df.columns if c not in ("household_id", "as_of", "district_code")]
    x = df[feats].fillna(0).astype(np.float32).to_numpy()
    return df, x


def cohort_of(con, night):
    return con.execute(f"""
        SELECT DISTINCT household_id FROM (
            SELECT household_id, observed_on, known_on FROM ua UNION ALL
            SELECT household_id, observed_on, known_on FROM cr UNION ALL
            SELECT household_id, observed_on, known_on FROM sg)
        WHERE observed_on <= DATE '{night}' AND known_on <= DATE '{night}'
          AND observed_on > DATE '{night}' - 365""").fetchall()


def fit(x, y, order):
    """LightGBM, early-stopped on the most recent fifth (by `order`), refitted on everything."""
    params = dict(objective="binary", learning_rate=0.05, num_leaves=31, min_data_in_leaf=20,
                  feature_fraction=0.8, bagging_fraction=0.8, bagging_freq=1, seed=7, verbose=-1)
    idx = np.argsort(order, kind="stable")
    cut = int(len(idx) * 0.8)
    tr, va = idx[:cut], idx[cut:]
    booster = lgb.train(params, lgb.Dataset(x[tr], y[tr]), num_boost_round=1000,
                        valid_sets=[lgb.Dataset(x[va], y[va])],
                        callbacks=[lgb.early_stopping(50, verbose=False)])
    rounds = max(booster.best_iteration, 1)
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=rounds), rounds


def excluded(con, a, night):
    """Households a screening with the legacy lists leaves out on `night`: a referral in the
    last `cooldown_days` with no outcome decided yet, or a visit that ended `supported` in the
    last `supported_days`; an urgency-3 council report in the last `urgent_days` overrides both.
    The same rules as Lantern's screening (config [screen]), so both pipelines compete for the
    same households."""
    refs = os.path.join(a.sim, "history", "referrals.ndjson")
    rows = con.execute(f"""
        WITH refs AS (SELECT referral_id, household_id, TRY_CAST(as_of AS DATE) AS as_of
                      FROM read_json_auto('{refs}', format='newline_delimited', ignore_errors=true)),
             decided AS (SELECT * FROM outcomes WHERE decided_on < DATE '{night}'),
             open AS (SELECT r.household_id FROM refs r
                      WHERE r.as_of < DATE '{night}' AND r.as_of >= DATE '{night}' - {a.cooldown_days}
                        AND NOT EXISTS (SELECT 1 FROM decided d WHERE d.referral_id = r.referral_id)),
             supported AS (SELECT household_id FROM decided WHERE outcome = 'supported'
                           AND decided_on >= DATE '{night}' - {a.supported_days}),
             urgent AS (SELECT household_id FROM cr WHERE urgency = 3
                        AND observed_on <= DATE '{night}' AND known_on <= DATE '{night}'
                        AND observed_on > DATE '{night}' - {a.urgent_days})
        SELECT household_id FROM open UNION SELECT household_id FROM supported
        EXCEPT SELECT household_id FROM urgent""").fetchall()
    return {h for (h,) in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", required=True)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--train-as-of", required=True)
    ap.add_argument("--nights", nargs="+", required=True)
    ap.add_argument("--lists", action="store_true", help="use history/referrals.ndjson for referral dates")
    ap.add_argument("--ceiling", action="store_true", help="train on the ground truth instead of outcomes")
    ap.add_argument("--exclusions", action="store_true",
                    help="with --lists: leave out households with an open referral (cool-down) or recently supported, "
                         "unless an urgent council report names them, as any deployment with the lists would")
    ap.add_argument("--cooldown-days", type=int, default=60)
    ap.add_argument("--supported-days", type=int, default=180)
    ap.add_argument("--urgent-days", type=int, default=7)
    ap.add_argument("--capacity-scale", type=float, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--lag-days", type=int, default=30)
    ap.add_argument("--ingest-day", help="the day the files are read (future dates are rejected); default: the last night + 1")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads TO {os.cpu_count() or 2}")
    ingest_day = a.ingest_day or str(date.fromisoformat(a.nights[-1]) + timedelta(days=1))
    rejects = load(con, a.sim, a.registry, ingest_day)
    print(f"baseline: rejected {rejects}", file=sys.stderr)
    t = a.train_as_of
    if a.ceiling:
        # Every screened household at the month ends before training, labelled by the truth.
        truth = os.path.join(a.sim, "truth", "crisis_episodes.csv")
        con.execute(f"CREATE TABLE episodes AS SELECT household_id, TRY_CAST(start AS DATE) AS s, "
                    f"coalesce(TRY_CAST(\"end\" AS DATE), DATE '9999-12-31') AS e FROM read_csv('{truth}', header=true, all_varchar=true)")
        nights = [date.fromisoformat(t) - timedelta(days=30 * k) for k in range(1, 7)]
        rows = []
        for n in nights:
            rows += [(h, n) for (h,) in cohort_of(con, n)]
        rng = np.random.default_rng(7)
        if len(rows) > 300_000:
            rows = [rows[i] for i in sorted(rng.choice(len(rows), 300_000, replace=False))]
        con.execute("CREATE TABLE lab AS SELECT * FROM (VALUES (NULL::VARCHAR, NULL::DATE)) t(household_id, as_of) WHERE false")
        con.executemany("INSERT INTO lab VALUES (?, ?)", rows)
        con.execute("""CREATE TABLE lab2 AS SELECT l.household_id, l.as_of,
                       (EXISTS (SELECT 1 FROM episodes e WHERE e.household_id = l.household_id
                                AND e.s <= l.as_of AND l.as_of <= e.e))::INT AS label FROM lab l""")
    else:
        ref = (f"""SELECT referral_id, TRY_CAST(as_of AS DATE) AS as_of FROM read_json_auto(
                   '{os.path.join(a.sim, 'history', 'referrals.ndjson')}', format='newline_delimited', ignore_errors=true)"""
               if a.lists else "SELECT NULL::VARCHAR AS referral_id, NULL::DATE AS as_of WHERE false")
        con.execute(f"""
            CREATE TABLE lab2 AS
            WITH latest AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY referral_id
                              ORDER BY decided_on DESC) AS nth FROM outcomes WHERE decided_on < DATE '{t}') WHERE nth = 1),
                 refs AS ({ref})
            SELECT l.household_id, coalesce(r.as_of, l.decided_on - {a.lag_days}) AS as_of,
                   (l.outcome IN ('supported', 'declined_support'))::INT AS label
            FROM latest l LEFT JOIN refs r USING (referral_id)
            WHERE l.outcome IN ('supported', 'declined_support', 'no_crisis')
              AND coalesce(r.as_of, l.decided_on - {a.lag_days}) < DATE '{t}'""")
    con.execute("CREATE TABLE lab_cohort AS SELECT DISTINCT household_id, as_of FROM lab2")
    df, x = matrix(con, "lab_cohort")
    labels = con.execute("SELECT household_id, as_of, max(label) AS label FROM lab2 GROUP BY 1, 2").df()
    df = df[["household_id", "as_of"]].merge(labels, on=["household_id", "as_of"], how="left")
    y = df["label"].fillna(0).astype(int).to_numpy()
    order = df["as_of"].astype("datetime64[ns]").astype("int64").to_numpy()
    model, rounds = fit(x, y, order)
    print(f"baseline: {len(y)} training rows, {int(y.sum())} positive, {rounds} rounds", file=sys.stderr)
    caps = {}
    base = {"autonomous_gu": 18, "city": 18, "county": 8}
    for code, kind in con.execute("SELECT district_code, kind FROM districts").fetchall():
        caps[code] = max(1, int(math.floor(base.get(kind, 8) * a.capacity_scale + 0.5)))
    for night in a.nights:
        hs = cohort_of(con, night)
        if a.exclusions and a.lists:
            out = excluded(con, a, night)
            hs = [h for h in hs if h[0] not in out]
        con.execute("CREATE OR REPLACE TABLE night_cohort AS SELECT * FROM (VALUES (NULL::VARCHAR, NULL::DATE)) t(household_id, as_of) WHERE false")
        con.executemany("INSERT INTO night_cohort VALUES (?, ?)", [(h, night) for (h,) in hs])
        ndf, nx = matrix(con, "night_cohort")
        ndf = ndf[["household_id", "district_code"]].copy()
        ndf["score"] = model.predict(nx)
        ndf = ndf.sort_values(["district_code", "score", "household_id"], ascending=[True, False, True])
        with open(os.path.join(a.out, f"{night}.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["household_id", "district_code", "as_of", "score"])
            for code, group in ndf.groupby("district_code"):
                for r in group.head(caps.get(code, 0)).itertuples():
                    w.writerow([r.household_id, code, night, f"{r.score:.6f}"])


if __name__ == "__main__":
    main()
