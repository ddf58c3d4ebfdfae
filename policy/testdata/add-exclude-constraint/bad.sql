ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist (room_id WITH =, during WITH &&);

ALTER TABLE "Reservation" ADD EXCLUDE USING gist ("roomId" WITH =, tstzrange("startsAt", "endsAt") WITH &&);
