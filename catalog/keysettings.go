package catalog

// KeyTextDependsOnSettings reports whether the value a text form of a shard
// key of type typeOID denotes can depend on the session's settings: a
// date, timestamp or timestamptz, read under DateStyle (day or month first)
// and, for timestamptz without a zone, TimeZone. Keys of other types
// (integers, text, uuid, bool) mean the same everywhere.
func KeyTextDependsOnSettings(typeOID uint32) bool {
	switch typeOID {
	case hashOIDDate, hashOIDTimestamp, hashOIDTimestamptz:
		return true
	}
	return false
}

// KeyTextIndependentOfSettings reports whether text s, as a shard key of type
// typeOID, denotes the same value under every DateStyle and TimeZone and
// Hash reads it: always for types KeyTextDependsOnSettings rejects; for
// dates and timestamps, an ISO 8601 form (year first, which every DateStyle
// reads as year-month-day) or 'infinity', '-infinity', 'epoch'; for
// timestamptz, such a form with an explicit zone (Z, UTC, GMT or a numeric
// offset). Anything else (a zone-less timestamptz, '01/02/2024', 'Jan 8
// 1999', a named zone, 'now') only the session that runs the statement can
// read: the driver has PostgreSQL evaluate it in that session.
func KeyTextIndependentOfSettings(typeOID uint32, s string) bool {
	if !KeyTextDependsOnSettings(typeOID) {
		return true
	}
	var dt pgDateTime
	if err := dt.parse(s, hashTypeName(typeOID)); err != nil {
		return false
	}
	return typeOID != hashOIDTimestamptz || dt.special != specialNone || dt.hasZone
}
