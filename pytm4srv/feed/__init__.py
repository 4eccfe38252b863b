"""The calendar feed: holds and coming fires as an iCalendar subscription (docs/FEED.md)."""
