"""One scorer for every list: precision at capacity and recall against the simulator's truth.

    score.py --truth sim/truth/crisis_episodes.csv --list NAME=PATH [--list NAME=PATH ...]

PATH is a CSV (household_id, district_code, as_of[, ...]) or a Lantern referrals.parquet.
A listed household is a hit when a crisis episode covers the night (start <= night <= end, an
empty end meaning ongoing). Recall is hits over every household in crisis that night.
Prints one line per list: name, night, listed, hits, precision, recall.
"""

import argparse

import duckdb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--truth", required=True)
    ap.add_argument("--list", action="append", required=True)
    a = ap.parse_args()
    con = duckdb.connect()
    con.execute(f"""CREATE TABLE episodes AS SELECT household_id, TRY_CAST(start AS DATE) AS s,
                    coalesce(TRY_CAST("end" AS DATE), DATE '9999-12-31') AS e
                    FROM read_csv('{a.truth}', header=true, all_varchar=true)""")
    for item in a.list:
        name, path = item.split("=", 1)
        reader = f"read_parquet('{path}')" if path.endswith(".parquet") else \
            f"read_csv('{path}', header=true, all_varchar=true)"
        row = con.execute(f"""
            WITH l AS (SELECT DISTINCT household_id, TRY_CAST(as_of AS DATE) AS night FROM {reader}),
                 n AS (SELECT min(night) AS night FROM l),
                 hits AS (SELECT count(*) AS h FROM l WHERE EXISTS (
                     SELECT 1 FROM episodes e WHERE e.household_id = l.household_id
                     AND e.s <= l.night AND l.night <= e.e)),
                 crisis AS (SELECT count(DISTINCT household_id) AS c FROM episodes, n
                            WHERE s <= n.night AND n.night <= e)
            SELECT (SELECT night FROM n), (SELECT count(*) FROM l), h, c FROM hits, crisis""").fetchone()
        night, listed, hits, crisis = row
        p = hits / listed if listed else float("nan")
        r = hits / crisis if crisis else float("nan")
        print(f"{name}\t{night}\t{listed}\t{hits}\t{p:.4f}\t{r:.4f}")


if __name__ == "__main__":
    main()
