-- Household features as of a date, for every (household_id, as_of) pair in `cohort`.
--
-- This file is the feature definition. `lantern train`, `lantern screen` and `lantern backtest`
-- all run it, through the same code path, so a household gets the same values for the same date
-- whichever command asks. See pipelines/README.md for how to add a feature.
--
-- Tables (registered by Lantern before this runs):
--   cohort(household_id, as_of)     the pairs to compute: one as_of date for screening, every
--                                   past referral date for training; one plan for all of them
--   utility_arrears_events, council_report_events, service_gap_events
--                                   the signals, each event once (the first copy ingested):
--                                   the lake's columns, `month`, no free text. Lantern reads
--                                   them from the signal state (features/state.rs), or, with
--                                   features.source = "lake", deduplicates the raw lake itself
--   outcomes                        the lake (docs/LAKE.md)
--   referrals(referral_id, household_id, as_of, ...)          past referral lists (SPEC §4)
--   households(household_id, members, head_age_band, household_type, disability)   SPEC §2
--
-- Placeholders, replaced before the query is planned (so the scan reads only the months needed):
--   {window_start}  earliest as_of minus {lookback_days} days, as a DATE literal
--   {window_end}    latest as_of, as a DATE literal
--   {month_start} / {month_end}  the same as 'YYYY-MM' strings, to prune month folders
--   {lookback_days} how far back any signal counts (config features.lookback_days)
--
-- Point in time: an event counts for (h, D) only if observed_on <= D AND reported_on <= D
-- (SPEC §1), and outcomes only if decided before D. Nothing known after D can leak in.
-- Re-sent events are counted once: the *_events tables hold one copy of each event_id (the
-- first ingested), whichever month folder the copies landed in.
--
-- Every output column may be NULL; features.toml says how each one is imputed.

WITH
arrears AS (
    SELECT event_id, source, household_id, district_code, dong_code, observed_on,
           reported_on, utility, months_overdue, amount_krw, service_cut
    FROM utility_arrears_events
    WHERE observed_on > {window_start} AND observed_on <= {window_end}
),
reports AS (
    SELECT event_id, source, household_id, district_code, dong_code, observed_on,
           reported_on, concerns, urgency
    FROM council_report_events
    WHERE observed_on > {window_start} AND observed_on <= {window_end}
),
gaps AS (
    SELECT event_id, source, household_id, district_code, dong_code, observed_on,
           reported_on, program, gap
    FROM service_gap_events
    WHERE observed_on > {window_start} AND observed_on <= {window_end}
),
-- Each kind's events joined once with the pairs they count for: known by as_of (observed and
-- reported on or before it) and inside the look-back, with the event's `age` in days on as_of.
-- Windows then compare integers (`age < 90` is `observed_on > as_of - 90 days`), which is far
-- cheaper than subtracting an interval from a date for every event and window.
arrears_in AS (
    SELECT c.as_of, arrow_cast(c.as_of, 'Int32') - arrow_cast(e.observed_on, 'Int32') AS age, e.*
    FROM cohort c
    JOIN arrears e ON e.household_id = c.household_id
    WHERE e.observed_on <= c.as_of AND e.reported_on <= c.as_of
      AND arrow_cast(c.as_of, 'Int32') - arrow_cast(e.observed_on, 'Int32') < {lookback_days}
),
reports_in AS (
    SELECT c.as_of, arrow_cast(c.as_of, 'Int32') - arrow_cast(e.observed_on, 'Int32') AS age, e.*
    FROM cohort c
    JOIN reports e ON e.household_id = c.household_id
    WHERE e.observed_on <= c.as_of AND e.reported_on <= c.as_of
      AND arrow_cast(c.as_of, 'Int32') - arrow_cast(e.observed_on, 'Int32') < {lookback_days}
),
gaps_in AS (
    SELECT c.as_of, arrow_cast(c.as_of, 'Int32') - arrow_cast(e.observed_on, 'Int32') AS age, e.*
    FROM cohort c
    JOIN gaps e ON e.household_id = c.household_id
    WHERE e.observed_on <= c.as_of AND e.reported_on <= c.as_of
      AND arrow_cast(c.as_of, 'Int32') - arrow_cast(e.observed_on, 'Int32') < {lookback_days}
),
-- Every signal, for what spans kinds: sources, districts, where to visit.
known AS (
    SELECT household_id, as_of, age, source, district_code, dong_code, observed_on, reported_on FROM arrears_in
    UNION ALL
    SELECT household_id, as_of, age, source, district_code, dong_code, observed_on, reported_on FROM reports_in
    UNION ALL
    SELECT household_id, as_of, age, source, district_code, dong_code, observed_on, reported_on FROM gaps_in
),
known_by AS (
    SELECT household_id, as_of, source, district_code,
        count(*) AS n,
        max(observed_on) AS last_observed,
        max(CASE WHEN age < 90 THEN 1 ELSE 0 END) AS in_90d,
        -- The most recent signal's place, packed into one integer so that one max finds it:
        -- days observed and reported after the window's start (14 bits each: windows up to 44
        -- years), the district (17 bits) and the dong's last five digits plus one (17 bits, 0
        -- when there is none; its first five are the district's, SPEC §1). Ordered as
        -- (observed_on, reported_on, district_code, dong_code), a missing dong first. Integer
        -- arithmetic: building a string per event for this was a fifth of the feature step.
        max(CAST(arrow_cast(observed_on, 'Int32') - arrow_cast({window_start}, 'Int32') AS BIGINT) * 281474976710656
            + CAST(arrow_cast(reported_on, 'Int32') - arrow_cast({window_start}, 'Int32') AS BIGINT) * 17179869184
            + CAST(district_code AS BIGINT) * 131072
            + coalesce(CAST(dong_code AS BIGINT) % 100000 + 1, 0)) AS latest
    FROM known
    GROUP BY household_id, as_of, source, district_code
),
-- Distinct counts as two grouped levels (count of groups), not count(DISTINCT): DataFusion
-- runs count(DISTINCT) with a hash set per group, which was the feature step's largest cost.
-- One pass with two grouping sets, by source and by district, so that `known_by` (and the
-- joins under it) is computed once: DataFusion inlines a CTE wherever it is referenced.
-- `by_district` is 1 on the rows of the district set.
spread_sets AS (
    SELECT household_id, as_of, grouping(source) AS by_district,
        sum(n) AS n,
        max(last_observed) AS last_observed,
        max(in_90d) AS in_90d,
        max(latest) AS latest
    FROM known_by
    GROUP BY GROUPING SETS ((household_id, as_of, source), (household_id, as_of, district_code))
),
spread AS (
    SELECT household_id, as_of,
        -- Where to visit: the district and dong of the most recent signal (latest observed_on,
        -- then reported_on, then the larger code), unpacked from `latest`.
        CAST(max(latest) / 131072 % 131072 AS VARCHAR) AS district_code,
        CASE WHEN max(latest) % 131072 = 0 THEN NULL
             ELSE concat(CAST(max(latest) / 131072 % 131072 AS VARCHAR),
                         lpad(CAST(max(latest) % 131072 - 1 AS VARCHAR), 5, '0')) END AS dong_code,
        sum(CASE WHEN by_district = 0 THEN n END) AS signals_n,
        arrow_cast(as_of, 'Int32') - arrow_cast(max(last_observed), 'Int32') AS days_since_signal,
        sum(CASE WHEN by_district = 0 THEN 1 ELSE 0 END) AS sources_distinct,
        sum(CASE WHEN by_district = 1 THEN 1 ELSE 0 END) AS districts_distinct,
        sum(CASE WHEN by_district = 1 THEN in_90d ELSE 0 END) AS districts_distinct_90d
    FROM spread_sets
    GROUP BY household_id, as_of
),
arrears_f AS (
    SELECT e.household_id, e.as_of,
        count(CASE WHEN e.utility = 'electricity' AND e.age < 30 THEN 1 END) AS ua_elec_n_30d,
        ln(1 + sum(CASE WHEN e.utility = 'electricity' AND e.age < 30 THEN e.amount_krw END)) AS ua_elec_krw_30d,
        max(CASE WHEN e.utility = 'electricity' AND e.age < 30 THEN e.months_overdue END) AS ua_elec_overdue_max_30d,
        count(CASE WHEN e.utility = 'electricity' AND e.age < 90 THEN 1 END) AS ua_elec_n_90d,
        ln(1 + sum(CASE WHEN e.utility = 'electricity' AND e.age < 90 THEN e.amount_krw END)) AS ua_elec_krw_90d,
        max(CASE WHEN e.utility = 'electricity' AND e.age < 90 THEN e.months_overdue END) AS ua_elec_overdue_max_90d,
        count(CASE WHEN e.utility = 'electricity' AND e.age < 180 THEN 1 END) AS ua_elec_n_180d,
        ln(1 + sum(CASE WHEN e.utility = 'electricity' AND e.age < 180 THEN e.amount_krw END)) AS ua_elec_krw_180d,
        max(CASE WHEN e.utility = 'electricity' AND e.age < 180 THEN e.months_overdue END) AS ua_elec_overdue_max_180d,
        count(CASE WHEN e.utility = 'electricity' AND e.age < 365 THEN 1 END) AS ua_elec_n_365d,
        ln(1 + sum(CASE WHEN e.utility = 'electricity' AND e.age < 365 THEN e.amount_krw END)) AS ua_elec_krw_365d,
        max(CASE WHEN e.utility = 'electricity' AND e.age < 365 THEN e.months_overdue END) AS ua_elec_overdue_max_365d,
        count(CASE WHEN e.utility = 'water' AND e.age < 30 THEN 1 END) AS ua_water_n_30d,
        ln(1 + sum(CASE WHEN e.utility = 'water' AND e.age < 30 THEN e.amount_krw END)) AS ua_water_krw_30d,
        max(CASE WHEN e.utility = 'water' AND e.age < 30 THEN e.months_overdue END) AS ua_water_overdue_max_30d,
        count(CASE WHEN e.utility = 'water' AND e.age < 90 THEN 1 END) AS ua_water_n_90d,
        ln(1 + sum(CASE WHEN e.utility = 'water' AND e.age < 90 THEN e.amount_krw END)) AS ua_water_krw_90d,
        max(CASE WHEN e.utility = 'water' AND e.age < 90 THEN e.months_overdue END) AS ua_water_overdue_max_90d,
        count(CASE WHEN e.utility = 'water' AND e.age < 180 THEN 1 END) AS ua_water_n_180d,
        ln(1 + sum(CASE WHEN e.utility = 'water' AND e.age < 180 THEN e.amount_krw END)) AS ua_water_krw_180d,
        max(CASE WHEN e.utility = 'water' AND e.age < 180 THEN e.months_overdue END) AS ua_water_overdue_max_180d,
        count(CASE WHEN e.utility = 'water' AND e.age < 365 THEN 1 END) AS ua_water_n_365d,
        ln(1 + sum(CASE WHEN e.utility = 'water' AND e.age < 365 THEN e.amount_krw END)) AS ua_water_krw_365d,
        max(CASE WHEN e.utility = 'water' AND e.age < 365 THEN e.months_overdue END) AS ua_water_overdue_max_365d,
        count(CASE WHEN e.utility = 'gas' AND e.age < 30 THEN 1 END) AS ua_gas_n_30d,
        ln(1 + sum(CASE WHEN e.utility = 'gas' AND e.age < 30 THEN e.amount_krw END)) AS ua_gas_krw_30d,
        max(CASE WHEN e.utility = 'gas' AND e.age < 30 THEN e.months_overdue END) AS ua_gas_overdue_max_30d,
        count(CASE WHEN e.utility = 'gas' AND e.age < 90 THEN 1 END) AS ua_gas_n_90d,
        ln(1 + sum(CASE WHEN e.utility = 'gas' AND e.age < 90 THEN e.amount_krw END)) AS ua_gas_krw_90d,
        max(CASE WHEN e.utility = 'gas' AND e.age < 90 THEN e.months_overdue END) AS ua_gas_overdue_max_90d,
        count(CASE WHEN e.utility = 'gas' AND e.age < 180 THEN 1 END) AS ua_gas_n_180d,
        ln(1 + sum(CASE WHEN e.utility = 'gas' AND e.age < 180 THEN e.amount_krw END)) AS ua_gas_krw_180d,
        max(CASE WHEN e.utility = 'gas' AND e.age < 180 THEN e.months_overdue END) AS ua_gas_overdue_max_180d,
        count(CASE WHEN e.utility = 'gas' AND e.age < 365 THEN 1 END) AS ua_gas_n_365d,
        ln(1 + sum(CASE WHEN e.utility = 'gas' AND e.age < 365 THEN e.amount_krw END)) AS ua_gas_krw_365d,
        max(CASE WHEN e.utility = 'gas' AND e.age < 365 THEN e.months_overdue END) AS ua_gas_overdue_max_365d,
        count(CASE WHEN e.utility = 'telecom' AND e.age < 30 THEN 1 END) AS ua_telecom_n_30d,
        ln(1 + sum(CASE WHEN e.utility = 'telecom' AND e.age < 30 THEN e.amount_krw END)) AS ua_telecom_krw_30d,
        max(CASE WHEN e.utility = 'telecom' AND e.age < 30 THEN e.months_overdue END) AS ua_telecom_overdue_max_30d,
        count(CASE WHEN e.utility = 'telecom' AND e.age < 90 THEN 1 END) AS ua_telecom_n_90d,
        ln(1 + sum(CASE WHEN e.utility = 'telecom' AND e.age < 90 THEN e.amount_krw END)) AS ua_telecom_krw_90d,
        max(CASE WHEN e.utility = 'telecom' AND e.age < 90 THEN e.months_overdue END) AS ua_telecom_overdue_max_90d,
        count(CASE WHEN e.utility = 'telecom' AND e.age < 180 THEN 1 END) AS ua_telecom_n_180d,
        ln(1 + sum(CASE WHEN e.utility = 'telecom' AND e.age < 180 THEN e.amount_krw END)) AS ua_telecom_krw_180d,
        max(CASE WHEN e.utility = 'telecom' AND e.age < 180 THEN e.months_overdue END) AS ua_telecom_overdue_max_180d,
        count(CASE WHEN e.utility = 'telecom' AND e.age < 365 THEN 1 END) AS ua_telecom_n_365d,
        ln(1 + sum(CASE WHEN e.utility = 'telecom' AND e.age < 365 THEN e.amount_krw END)) AS ua_telecom_krw_365d,
        max(CASE WHEN e.utility = 'telecom' AND e.age < 365 THEN e.months_overdue END) AS ua_telecom_overdue_max_365d,
        count(CASE WHEN e.utility = 'health_insurance' AND e.age < 30 THEN 1 END) AS ua_nhi_n_30d,
        ln(1 + sum(CASE WHEN e.utility = 'health_insurance' AND e.age < 30 THEN e.amount_krw END)) AS ua_nhi_krw_30d,
        max(CASE WHEN e.utility = 'health_insurance' AND e.age < 30 THEN e.months_overdue END) AS ua_nhi_overdue_max_30d,
        count(CASE WHEN e.utility = 'health_insurance' AND e.age < 90 THEN 1 END) AS ua_nhi_n_90d,
        ln(1 + sum(CASE WHEN e.utility = 'health_insurance' AND e.age < 90 THEN e.amount_krw END)) AS ua_nhi_krw_90d,
        max(CASE WHEN e.utility = 'health_insurance' AND e.age < 90 THEN e.months_overdue END) AS ua_nhi_overdue_max_90d,
        count(CASE WHEN e.utility = 'health_insurance' AND e.age < 180 THEN 1 END) AS ua_nhi_n_180d,
        ln(1 + sum(CASE WHEN e.utility = 'health_insurance' AND e.age < 180 THEN e.amount_krw END)) AS ua_nhi_krw_180d,
        max(CASE WHEN e.utility = 'health_insurance' AND e.age < 180 THEN e.months_overdue END) AS ua_nhi_overdue_max_180d,
        count(CASE WHEN e.utility = 'health_insurance' AND e.age < 365 THEN 1 END) AS ua_nhi_n_365d,
        ln(1 + sum(CASE WHEN e.utility = 'health_insurance' AND e.age < 365 THEN e.amount_krw END)) AS ua_nhi_krw_365d,
        max(CASE WHEN e.utility = 'health_insurance' AND e.age < 365 THEN e.months_overdue END) AS ua_nhi_overdue_max_365d,
        count(CASE WHEN e.utility = 'housing_fee' AND e.age < 30 THEN 1 END) AS ua_housing_fee_n_30d,
        ln(1 + sum(CASE WHEN e.utility = 'housing_fee' AND e.age < 30 THEN e.amount_krw END)) AS ua_housing_fee_krw_30d,
        max(CASE WHEN e.utility = 'housing_fee' AND e.age < 30 THEN e.months_overdue END) AS ua_housing_fee_overdue_max_30d,
        count(CASE WHEN e.utility = 'housing_fee' AND e.age < 90 THEN 1 END) AS ua_housing_fee_n_90d,
        ln(1 + sum(CASE WHEN e.utility = 'housing_fee' AND e.age < 90 THEN e.amount_krw END)) AS ua_housing_fee_krw_90d,
        max(CASE WHEN e.utility = 'housing_fee' AND e.age < 90 THEN e.months_overdue END) AS ua_housing_fee_overdue_max_90d,
        count(CASE WHEN e.utility = 'housing_fee' AND e.age < 180 THEN 1 END) AS ua_housing_fee_n_180d,
        ln(1 + sum(CASE WHEN e.utility = 'housing_fee' AND e.age < 180 THEN e.amount_krw END)) AS ua_housing_fee_krw_180d,
        max(CASE WHEN e.utility = 'housing_fee' AND e.age < 180 THEN e.months_overdue END) AS ua_housing_fee_overdue_max_180d,
        count(CASE WHEN e.utility = 'housing_fee' AND e.age < 365 THEN 1 END) AS ua_housing_fee_n_365d,
        ln(1 + sum(CASE WHEN e.utility = 'housing_fee' AND e.age < 365 THEN e.amount_krw END)) AS ua_housing_fee_krw_365d,
        max(CASE WHEN e.utility = 'housing_fee' AND e.age < 365 THEN e.months_overdue END) AS ua_housing_fee_overdue_max_365d,
        count(CASE WHEN e.utility = 'rent' AND e.age < 30 THEN 1 END) AS ua_rent_n_30d,
        ln(1 + sum(CASE WHEN e.utility = 'rent' AND e.age < 30 THEN e.amount_krw END)) AS ua_rent_krw_30d,
        max(CASE WHEN e.utility = 'rent' AND e.age < 30 THEN e.months_overdue END) AS ua_rent_overdue_max_30d,
        count(CASE WHEN e.utility = 'rent' AND e.age < 90 THEN 1 END) AS ua_rent_n_90d,
        ln(1 + sum(CASE WHEN e.utility = 'rent' AND e.age < 90 THEN e.amount_krw END)) AS ua_rent_krw_90d,
        max(CASE WHEN e.utility = 'rent' AND e.age < 90 THEN e.months_overdue END) AS ua_rent_overdue_max_90d,
        count(CASE WHEN e.utility = 'rent' AND e.age < 180 THEN 1 END) AS ua_rent_n_180d,
        ln(1 + sum(CASE WHEN e.utility = 'rent' AND e.age < 180 THEN e.amount_krw END)) AS ua_rent_krw_180d,
        max(CASE WHEN e.utility = 'rent' AND e.age < 180 THEN e.months_overdue END) AS ua_rent_overdue_max_180d,
        count(CASE WHEN e.utility = 'rent' AND e.age < 365 THEN 1 END) AS ua_rent_n_365d,
        ln(1 + sum(CASE WHEN e.utility = 'rent' AND e.age < 365 THEN e.amount_krw END)) AS ua_rent_krw_365d,
        max(CASE WHEN e.utility = 'rent' AND e.age < 365 THEN e.months_overdue END) AS ua_rent_overdue_max_365d,
        count(CASE WHEN e.utility = 'pension_loan' AND e.age < 30 THEN 1 END) AS ua_pension_loan_n_30d,
        ln(1 + sum(CASE WHEN e.utility = 'pension_loan' AND e.age < 30 THEN e.amount_krw END)) AS ua_pension_loan_krw_30d,
        max(CASE WHEN e.utility = 'pension_loan' AND e.age < 30 THEN e.months_overdue END) AS ua_pension_loan_overdue_max_30d,
        count(CASE WHEN e.utility = 'pension_loan' AND e.age < 90 THEN 1 END) AS ua_pension_loan_n_90d,
        ln(1 + sum(CASE WHEN e.utility = 'pension_loan' AND e.age < 90 THEN e.amount_krw END)) AS ua_pension_loan_krw_90d,
        max(CASE WHEN e.utility = 'pension_loan' AND e.age < 90 THEN e.months_overdue END) AS ua_pension_loan_overdue_max_90d,
        count(CASE WHEN e.utility = 'pension_loan' AND e.age < 180 THEN 1 END) AS ua_pension_loan_n_180d,
        ln(1 + sum(CASE WHEN e.utility = 'pension_loan' AND e.age < 180 THEN e.amount_krw END)) AS ua_pension_loan_krw_180d,
        max(CASE WHEN e.utility = 'pension_loan' AND e.age < 180 THEN e.months_overdue END) AS ua_pension_loan_overdue_max_180d,
        count(CASE WHEN e.utility = 'pension_loan' AND e.age < 365 THEN 1 END) AS ua_pension_loan_n_365d,
        ln(1 + sum(CASE WHEN e.utility = 'pension_loan' AND e.age < 365 THEN e.amount_krw END)) AS ua_pension_loan_krw_365d,
        max(CASE WHEN e.utility = 'pension_loan' AND e.age < 365 THEN e.months_overdue END) AS ua_pension_loan_overdue_max_365d,
        count(CASE WHEN e.utility = 'credit' AND e.age < 30 THEN 1 END) AS ua_credit_n_30d,
        ln(1 + sum(CASE WHEN e.utility = 'credit' AND e.age < 30 THEN e.amount_krw END)) AS ua_credit_krw_30d,
        max(CASE WHEN e.utility = 'credit' AND e.age < 30 THEN e.months_overdue END) AS ua_credit_overdue_max_30d,
        count(CASE WHEN e.utility = 'credit' AND e.age < 90 THEN 1 END) AS ua_credit_n_90d,
        ln(1 + sum(CASE WHEN e.utility = 'credit' AND e.age < 90 THEN e.amount_krw END)) AS ua_credit_krw_90d,
        max(CASE WHEN e.utility = 'credit' AND e.age < 90 THEN e.months_overdue END) AS ua_credit_overdue_max_90d,
        count(CASE WHEN e.utility = 'credit' AND e.age < 180 THEN 1 END) AS ua_credit_n_180d,
        ln(1 + sum(CASE WHEN e.utility = 'credit' AND e.age < 180 THEN e.amount_krw END)) AS ua_credit_krw_180d,
        max(CASE WHEN e.utility = 'credit' AND e.age < 180 THEN e.months_overdue END) AS ua_credit_overdue_max_180d,
        count(CASE WHEN e.utility = 'credit' AND e.age < 365 THEN 1 END) AS ua_credit_n_365d,
        ln(1 + sum(CASE WHEN e.utility = 'credit' AND e.age < 365 THEN e.amount_krw END)) AS ua_credit_krw_365d,
        max(CASE WHEN e.utility = 'credit' AND e.age < 365 THEN e.months_overdue END) AS ua_credit_overdue_max_365d,
        count(CASE WHEN e.age < 365 THEN 1 END) AS ua_n_365d,
        -- How many of the utilities (the contract's nine) are in arrears: a sum of indicators,
        -- not count(DISTINCT) (see spread).
        (CASE WHEN count(CASE WHEN e.utility = 'electricity' AND e.age < 90 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'water' AND e.age < 90 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'gas' AND e.age < 90 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'telecom' AND e.age < 90 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'health_insurance' AND e.age < 90 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'housing_fee' AND e.age < 90 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'rent' AND e.age < 90 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'pension_loan' AND e.age < 90 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'credit' AND e.age < 90 THEN 1 END) > 0 THEN 1 ELSE 0 END) AS ua_utilities_90d,
        (CASE WHEN count(CASE WHEN e.utility = 'electricity' AND e.age < 365 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'water' AND e.age < 365 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'gas' AND e.age < 365 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'telecom' AND e.age < 365 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'health_insurance' AND e.age < 365 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'housing_fee' AND e.age < 365 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'rent' AND e.age < 365 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'pension_loan' AND e.age < 365 THEN 1 END) > 0 THEN 1 ELSE 0 END
          + CASE WHEN count(CASE WHEN e.utility = 'credit' AND e.age < 365 THEN 1 END) > 0 THEN 1 ELSE 0 END) AS ua_utilities_365d,
        -- The most recent months_overdue, and whether it is rising: the worst of the last
        -- 90 days against the worst of the 90 days before.
        -- (the latest observed_on, then the larger months_overdue: one max over a packed key,
        -- months_overdue being at most 240 by contract, instead of an ordered first_value).
        (max((arrow_cast(e.observed_on, 'Int32') + 100000) * 1000 + e.months_overdue) % 1000) AS ua_overdue_latest,
        coalesce(max(CASE WHEN e.age < 90 THEN e.months_overdue END), 0)
          - coalesce(max(CASE WHEN e.age >= 90
                               AND e.age < 180 THEN e.months_overdue END), 0)
          AS ua_overdue_trend,
        count(CASE WHEN e.service_cut AND e.age < 90 THEN 1 END) AS ua_cut_n_90d,
        count(CASE WHEN e.service_cut AND e.age < 365 THEN 1 END) AS ua_cut_n_365d,
        arrow_cast(e.as_of, 'Int32') - arrow_cast(max(CASE WHEN e.service_cut THEN e.observed_on END), 'Int32') AS ua_days_since_cut
    FROM arrears_in e
    GROUP BY e.household_id, e.as_of
),
reports_f AS (
    SELECT e.household_id, e.as_of,
        count(CASE WHEN e.age < 90 THEN 1 END) AS cr_n_90d,
        count(CASE WHEN e.age < 365 THEN 1 END) AS cr_n_365d,
        max(CASE WHEN e.age < 90 THEN e.urgency END) AS cr_urgency_max_90d,
        max(CASE WHEN e.age < 365 THEN e.urgency END) AS cr_urgency_max_365d,
        -- An urgency-3 report in the last 7 days puts a household on the list whatever its score.
        count(CASE WHEN e.urgency = 3 AND e.age < 7 THEN 1 END) AS cr_urgent_7d,
        arrow_cast(e.as_of, 'Int32') - arrow_cast(max(e.observed_on), 'Int32') AS cr_days_since,
        max(CASE WHEN concat(',', e.concerns, ',') LIKE '%,isolation,%' THEN 1 ELSE 0 END) AS cr_concern_isolation,
        max(CASE WHEN concat(',', e.concerns, ',') LIKE '%,food,%' THEN 1 ELSE 0 END) AS cr_concern_food,
        max(CASE WHEN concat(',', e.concerns, ',') LIKE '%,housing,%' THEN 1 ELSE 0 END) AS cr_concern_housing,
        max(CASE WHEN concat(',', e.concerns, ',') LIKE '%,health,%' THEN 1 ELSE 0 END) AS cr_concern_health,
        max(CASE WHEN concat(',', e.concerns, ',') LIKE '%,mental_health,%' THEN 1 ELSE 0 END) AS cr_concern_mental_health,
        max(CASE WHEN concat(',', e.concerns, ',') LIKE '%,addiction,%' THEN 1 ELSE 0 END) AS cr_concern_addiction,
        max(CASE WHEN concat(',', e.concerns, ',') LIKE '%,debt,%' THEN 1 ELSE 0 END) AS cr_concern_debt,
        max(CASE WHEN concat(',', e.concerns, ',') LIKE '%,child_care,%' THEN 1 ELSE 0 END) AS cr_concern_child_care,
        max(CASE WHEN concat(',', e.concerns, ',') LIKE '%,elder_care,%' THEN 1 ELSE 0 END) AS cr_concern_elder_care,
        max(CASE WHEN concat(',', e.concerns, ',') LIKE '%,disability_care,%' THEN 1 ELSE 0 END) AS cr_concern_disability_care,
        max(CASE WHEN concat(',', e.concerns, ',') LIKE '%,suicide_risk,%' THEN 1 ELSE 0 END) AS cr_concern_suicide_risk,
        max(CASE WHEN concat(',', e.concerns, ',') LIKE '%,unemployment,%' THEN 1 ELSE 0 END) AS cr_concern_unemployment
    FROM reports_in e
    GROUP BY e.household_id, e.as_of
),
gaps_f AS (
    SELECT e.household_id, e.as_of,
        count(CASE WHEN e.age < 90 THEN 1 END) AS sg_n_90d,
        count(CASE WHEN e.age < 365 THEN 1 END) AS sg_n_365d,
        count(CASE WHEN e.gap = 'benefit_terminated' THEN 1 END) AS sg_benefit_terminated,
        count(CASE WHEN e.gap = 'application_rejected' THEN 1 END) AS sg_application_rejected,
        count(CASE WHEN e.gap = 'eligible_not_enrolled' THEN 1 END) AS sg_eligible_not_enrolled,
        count(CASE WHEN e.gap = 'service_ended' THEN 1 END) AS sg_service_ended,
        count(CASE WHEN e.gap = 'contact_failed' THEN 1 END) AS sg_contact_failed,
        count(CASE WHEN e.program IN ('basic_livelihood', 'emergency_welfare', 'medical_aid') THEN 1 END) AS sg_core_programs,
        arrow_cast(e.as_of, 'Int32') - arrow_cast(max(e.observed_on), 'Int32') AS sg_days_since
    FROM gaps_in e
    GROUP BY e.household_id, e.as_of
),
-- Earlier referrals and what their visits found, as known on the day (outcomes decided before
-- as_of; the referral being labelled is never its own feature).
-- One row per earlier referral first (its outcome classes as flags), then counts: the same
-- numbers as count(DISTINCT referral_id) per class, on grouped accumulators.
history_rows AS (
    SELECT c.household_id, c.as_of, r.referral_id, max(r.as_of) AS referred_on,
        max(CASE WHEN o.outcome IN ('supported', 'declined_support') THEN 1 ELSE 0 END) AS crisis,
        max(CASE WHEN o.outcome = 'no_crisis' THEN 1 ELSE 0 END) AS no_crisis,
        max(CASE WHEN o.outcome = 'unreachable' THEN 1 ELSE 0 END) AS unreachable,
        max(CASE WHEN o.outcome = 'moved' THEN 1 ELSE 0 END) AS moved,
        max(CASE WHEN o.referral_id IS NULL THEN 1 ELSE 0 END) AS no_outcome
    FROM cohort c
    JOIN referrals r ON r.household_id = c.household_id AND r.as_of < c.as_of
    LEFT JOIN outcomes o ON o.referral_id = r.referral_id AND o.decided_on < c.as_of
    GROUP BY c.household_id, c.as_of, r.referral_id
),
history_f AS (
    SELECT household_id, as_of,
        count(*) AS ref_n_prior,
        sum(crisis) AS ref_crisis_prior,
        sum(no_crisis) AS ref_no_crisis_prior,
        sum(unreachable) AS ref_unreachable_prior,
        sum(moved) AS ref_moved_prior,
        sum(no_outcome) AS ref_open_prior,
        arrow_cast(as_of, 'Int32') - arrow_cast(max(referred_on), 'Int32') AS ref_days_since
    FROM history_rows
    GROUP BY household_id, as_of
),
-- The household reference (SPEC §2); hh_known is 0 (imputed) when the household is not in it.
hh_f AS (
    SELECT household_id, household_type, head_age_band, disability,
        1 AS hh_known,
        members AS hh_members,
        CASE WHEN disability THEN 1 ELSE 0 END AS hh_disability,
        CASE WHEN household_type = 'single' THEN 1 ELSE 0 END AS hh_type_single,
        CASE WHEN household_type = 'elderly_single' THEN 1 ELSE 0 END AS hh_type_elderly_single,
        CASE WHEN household_type = 'single_parent' THEN 1 ELSE 0 END AS hh_type_single_parent,
        CASE WHEN household_type = 'couple' THEN 1 ELSE 0 END AS hh_type_couple,
        CASE WHEN household_type = 'family' THEN 1 ELSE 0 END AS hh_type_family,
        CASE WHEN head_age_band = '0-19' THEN 1 ELSE 0 END AS hh_age_0_19,
        CASE WHEN head_age_band = '20-39' THEN 1 ELSE 0 END AS hh_age_20_39,
        CASE WHEN head_age_band = '40-64' THEN 1 ELSE 0 END AS hh_age_40_64,
        CASE WHEN head_age_band = '65+' THEN 1 ELSE 0 END AS hh_age_65_plus
    FROM households
    -- Only the slice's households: the reference holds every household of the country.
    WHERE household_id IN (SELECT household_id FROM cohort)
)
SELECT
    c.household_id,
    c.as_of,
    s.* EXCLUDE (household_id, as_of),
    a.* EXCLUDE (household_id, as_of),
    r.* EXCLUDE (household_id, as_of),
    g.* EXCLUDE (household_id, as_of),
    y.* EXCLUDE (household_id, as_of),
    h.* EXCLUDE (household_id)
-- Narrowest first: every join copies the columns joined so far, so the widest part (the
-- arrears, over a hundred columns) is copied once, at the end, not once per later join.
FROM cohort c
LEFT JOIN hh_f h ON h.household_id = c.household_id
LEFT JOIN history_f y ON y.household_id = c.household_id AND y.as_of = c.as_of
LEFT JOIN spread s ON s.household_id = c.household_id AND s.as_of = c.as_of
LEFT JOIN gaps_f g ON g.household_id = c.household_id AND g.as_of = c.as_of
LEFT JOIN reports_f r ON r.household_id = c.household_id AND r.as_of = c.as_of
LEFT JOIN arrears_f a ON a.household_id = c.household_id AND a.as_of = c.as_of
