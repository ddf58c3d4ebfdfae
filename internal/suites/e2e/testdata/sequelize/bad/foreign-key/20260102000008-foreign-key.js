'use strict';
module.exports = {
  async up(queryInterface) {
    await queryInterface.addConstraint('JournalLines', {
      fields: ['accountId'], type: 'foreign key', name: 'journal_lines_account_fk',
      references: { table: 'Accounts', field: 'id' },
    });
  },
  async down() {},
};
