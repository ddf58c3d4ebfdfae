'use strict';
// The same without a transaction: each statement in autocommit on a new, empty table.
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.createTable('Fees', {
      id: { type: Sequelize.BIGINT, primaryKey: true, autoIncrement: true },
      journalLineId: { type: Sequelize.BIGINT },
      amount: { type: Sequelize.DECIMAL(18, 2), allowNull: false },
    });
    await queryInterface.addIndex('Fees', ['journalLineId'], { name: 'fees_journal_line_id' });
    await queryInterface.addConstraint('Fees', {
      fields: ['amount'], type: 'check', name: 'fees_amount_positive', where: { amount: { [Sequelize.Op.gte]: 0 } },
    });
  },
  async down(queryInterface) {
    await queryInterface.dropTable('Fees');
  },
};
