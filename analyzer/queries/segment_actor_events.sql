-- Events with the segment their thread was in (0 outside any segment).
SELECT *, coalesce(last_value(CASE WHEN op = 'segment-begin' THEN obj
                                   WHEN op = 'segment-end' THEN 0 END IGNORE NULLS)
                   OVER (PARTITION BY run, th ORDER BY seq ROWS UNBOUNDED PRECEDING), 0) AS segment
FROM events
