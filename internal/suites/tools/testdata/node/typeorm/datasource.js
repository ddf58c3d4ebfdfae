// The DataSource of a project that reads its connection from DATABASE_URL;
// MIGRATIONS picks the directory of the scenario.
const { DataSource } = require('typeorm');

module.exports = new DataSource({
  type: 'postgres',
  url: process.env.DATABASE_URL,
  migrations: [process.env.MIGRATIONS + '/*.js'],
});
