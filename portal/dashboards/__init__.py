"""Dashboards: a device's consumption by local hour and day, raw readings, CSV export, the
client's live overview and the administrators' fleet view.

Charts read ``hourly_energy`` (UTC clock hours), never raw readings, so a year costs one
index range scan of 8,784 rows per device. A "day" is the signed-in user's local calendar day
(``users.time_zone``): an hour belongs to the local day in which it starts, so a day has 23 or
25 hours when the clocks change.
"""
