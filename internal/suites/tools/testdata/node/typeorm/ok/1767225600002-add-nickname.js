module.exports = class AddNickname1767225600002 {
  name = 'AddNickname1767225600002';

  async up(queryRunner) {
    await queryRunner.query(`ALTER TABLE "big" ADD "nickname" text`);
  }

  async down(queryRunner) {
    await queryRunner.query(`ALTER TABLE "big" DROP COLUMN "nickname"`);
  }
};
