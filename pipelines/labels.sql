-- Training labels (SPEC §3): every case outcome decided before {before}, with the date its
-- household was referred (features are computed as of that date).
--
-- A referral can have several outcome records (a correction, say): the latest decision counts.
-- `supported` and `declined_support` confirm a crisis (label 1), `no_crisis` does not (0);
-- `unreachable` and `moved` carry no label and are left out.
--
-- The referral date comes from the lists (`source` = 'referral'): those Lantern issued, those
-- imported from the system it replaces, and referrals a correction withdrew (the visit
-- happened). An outcome whose referral no list holds, as in a legacy system's bare outcome
-- feed, is still a label: its referral date is estimated as `decided_on` less
-- {estimated_lag_days} days (`estimated_referral_lag_days` in features.toml; 'estimated').
--
-- `selection_probability` is set for an `explored` referral (drawn at random below the cut):
-- training weighs its outcome by the inverse. NULL for every referral listed for certain.
WITH latest AS (
    SELECT referral_id, household_id, district_code, outcome, decided_on FROM (
        SELECT referral_id, household_id, district_code, outcome, decided_on,
               row_number() OVER (PARTITION BY referral_id
                                  ORDER BY decided_on DESC, ingested_at DESC) AS nth
        FROM outcomes
        WHERE decided_on < {before}
    ) WHERE nth = 1
),
listed AS (
    SELECT household_id, as_of, referral_id, district_code, selection_probability FROM referrals
    UNION ALL
    SELECT household_id, as_of, referral_id, district_code, selection_probability
    FROM withdrawn_referrals
)
SELECT r.household_id, r.as_of, r.referral_id, r.district_code, l.decided_on,
       CASE WHEN l.outcome IN ('supported', 'declined_support') THEN 1 ELSE 0 END AS label,
       'referral' AS source, r.selection_probability
FROM listed r
JOIN latest l ON l.referral_id = r.referral_id
WHERE r.as_of < {before}
  AND l.outcome IN ('supported', 'declined_support', 'no_crisis')
UNION ALL
SELECT l.household_id, l.decided_on - INTERVAL '{estimated_lag_days} days' AS as_of,
       l.referral_id, l.district_code, l.decided_on,
       CASE WHEN l.outcome IN ('supported', 'declined_support') THEN 1 ELSE 0 END AS label,
       'estimated' AS source, CAST(NULL AS DOUBLE) AS selection_probability
FROM latest l
WHERE l.outcome IN ('supported', 'declined_support', 'no_crisis')
  AND NOT EXISTS (SELECT 1 FROM listed r WHERE r.referral_id = l.referral_id)
ORDER BY as_of, referral_id
