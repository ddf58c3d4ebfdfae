CREATE TABLE bookings (id bigint PRIMARY KEY, room_id bigint, during tstzrange, EXCLUDE USING gist (room_id WITH =, during WITH &&));

-- context: created=bookings
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist (room_id WITH =, during WITH &&);

-- context: small="Reservation"
ALTER TABLE "Reservation" ADD EXCLUDE USING gist ("roomId" WITH =, tstzrange("startsAt", "endsAt") WITH &&);
