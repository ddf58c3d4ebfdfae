'use strict';
// The seeds' zero-downtime index: CONCURRENTLY, outside any transaction.
module.exports = {
  async up(queryInterface) {
    await queryInterface.sequelize.query(
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS journal_lines_created_at ON "JournalLines" ("createdAt")',
      { transaction: null },
    );
  },
  async down(queryInterface) {
    await queryInterface.sequelize.query('DROP INDEX CONCURRENTLY IF EXISTS journal_lines_created_at', { transaction: null });
  },
};
