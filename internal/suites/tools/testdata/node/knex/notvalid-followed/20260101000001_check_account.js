// The NOT VALID step, in knex's default transaction.
exports.up = (knex) => knex.raw('ALTER TABLE big ADD CONSTRAINT big_account_nonnegative CHECK (account >= 0) NOT VALID');
exports.down = async () => {};
