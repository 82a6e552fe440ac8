-- Who is screened on a night: every household with at least one signal known by {window_end}
-- (observed and reported on or before it) and observed in the look-back window.
-- Placeholders as in features.sql.
SELECT DISTINCT household_id
FROM (
    SELECT household_id, observed_on, reported_on FROM utility_arrears
    WHERE month >= '{month_start}' AND month <= '{month_end}'
    UNION ALL
    SELECT household_id, observed_on, reported_on FROM council_report
    WHERE month >= '{month_start}' AND month <= '{month_end}'
    UNION ALL
    SELECT household_id, observed_on, reported_on FROM service_gap
    WHERE month >= '{month_start}' AND month <= '{month_end}'
) e
WHERE e.observed_on > {window_start} AND e.observed_on <= {window_end}
  AND e.reported_on <= {window_end}
ORDER BY household_id
