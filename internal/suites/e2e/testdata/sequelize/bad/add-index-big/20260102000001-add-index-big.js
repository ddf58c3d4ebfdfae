'use strict';
// addIndex on the big table: pgguard rewrites it to CREATE INDEX CONCURRENTLY.
module.exports = {
  async up(queryInterface) {
    await queryInterface.addIndex('JournalLines', ['accountId'], { name: 'journal_lines_account_id' });
  },
  async down(queryInterface) {
    await queryInterface.removeIndex('JournalLines', 'journal_lines_account_id');
  },
};
