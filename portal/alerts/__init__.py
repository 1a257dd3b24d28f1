"""Alerts (issue #6, portal side): list and acknowledge, pages, and live delivery.

The hub raises, updates and retracts alerts in the ``alerts`` table and publishes each change
on ``ems/v1/events/alerts/{user_id}`` after the commit; ``push`` forwards those to the owner's
open sockets and to administrators. Everything a page shows comes from the database, so a user
who was away sees their unread alerts at the next sign-in.
"""
