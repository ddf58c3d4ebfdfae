'use strict';
// Enum values first, before any migration uses them (a lesson from the seeds).
module.exports = {
  async up(queryInterface) {
    await queryInterface.sequelize.query(`ALTER TYPE "enum_JournalLines_kind" ADD VALUE IF NOT EXISTS 'international_pin'`);
  },
  async down() {},
};
