-- Events with the segment their thread was in (0 outside any segment). Only the
-- segments that {segment_filter} keeps count (all of them with --actors segment; the
-- `job` segments of thread pools otherwise).
SELECT *, coalesce(last_value(CASE WHEN op = 'segment-begin' AND {segment_filter} THEN obj
                                   WHEN op = 'segment-end' AND {segment_filter} THEN 0 END IGNORE NULLS)
                   OVER (PARTITION BY run, th ORDER BY seq ROWS UNBOUNDED PRECEDING), 0) AS segment
FROM events
