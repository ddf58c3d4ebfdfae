// knex.migrate.latest() called from code, as an application's start-up or
// a deploy script calls it, with the knexfile's settings. The rejection is
// left unhandled, so node prints the error its default way (its stack,
// then its own properties: pg's detail, hint, code...), and exits with 1.
const knex = require('knex')(require('./knexfile'));

knex.migrate.latest().then(() => knex.destroy());
