// Reads an iCalendar file with ical.js and prints what a calendar client would see, as JSON:
// the calendar's name and, for each VEVENT, its UID, status, sequence, start and end (UNIX ms),
// summary and description. Usage: node read_with_icaljs.mjs ICAL_JS_DIR FILE
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [icalDir, file] = process.argv.slice(2);
const { default: ICAL } = await import(
  pathToFileURL(join(icalDir, "node_modules", "ical.js", "dist", "ical.js")).href
);
const calendar = new ICAL.Component(ICAL.parse(readFileSync(file, "utf8")));
const events = calendar.getAllSubcomponents("vevent").map((component) => {
  const event = new ICAL.Event(component);
  return {
    uid: event.uid,
    status: component.getFirstPropertyValue("status"),
    sequence: event.sequence,
    start: event.startDate.toJSDate().getTime(),
    end: event.endDate.toJSDate().getTime(),
    startIsUtc: event.startDate.zone === ICAL.Timezone.utcTimezone,
    summary: event.summary,
    description: event.description,
  };
});
console.log(
  JSON.stringify({
    name: calendar.getFirstPropertyValue("name"),
    wrName: calendar.getFirstPropertyValue("x-wr-calname"),
    refresh: String(calendar.getFirstPropertyValue("refresh-interval")),
    events,
  }),
);
