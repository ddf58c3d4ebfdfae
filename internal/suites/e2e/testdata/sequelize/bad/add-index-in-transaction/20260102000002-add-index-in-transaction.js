'use strict';
// The same inside a transaction: CONCURRENTLY is impossible there, so pgguard refuses.
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.sequelize.transaction(async (transaction) => {
      await queryInterface.addColumn('Accounts', 'nickname', { type: Sequelize.TEXT }, { transaction });
      await queryInterface.addIndex('JournalLines', ['amount'], { name: 'journal_lines_amount', transaction });
    });
  },
  async down() {},
};
