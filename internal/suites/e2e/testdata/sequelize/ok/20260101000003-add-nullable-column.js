'use strict';
// The seeds' zero-downtime column: nullable, no default — instantaneous.
module.exports = {
  async up(queryInterface, Sequelize) {
    await queryInterface.addColumn('JournalLines', 'feeAmount', { type: Sequelize.DECIMAL(18, 2), allowNull: true });
  },
  async down(queryInterface) {
    await queryInterface.removeColumn('JournalLines', 'feeAmount');
  },
};
