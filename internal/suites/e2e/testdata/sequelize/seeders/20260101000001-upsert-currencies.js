'use strict';
// A seeder upsert: re-runnable thanks to ON CONFLICT.
module.exports = {
  async up(queryInterface) {
    await queryInterface.sequelize.query(`
      INSERT INTO "Currencies" (code, name) VALUES ('ZAR', 'South African rand'), ('USD', 'US dollar')
      ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name`);
  },
  async down(queryInterface) {
    await queryInterface.bulkDelete('Currencies', null, {});
  },
};
